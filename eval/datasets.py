"""Evaluation datasets as one item type: the project's gold set and XQuAD German.

- ``gold``: ``eval/gold.jsonl``, questions about the five sample articles (fields id,
  question, history, lang, answerable, sources, answers, evidence); its corpus is the
  sample articles shipped with :mod:`rag`.
- ``xquad-de`` / ``xquad-en``: XQuAD, shipped in ``eval/data/xquad`` (CC BY-SA 4.0). The corpus
  is its 240 German paragraphs, one article each, named ``xquad/<article-slug>/<paragraph-index>.txt``.
  ``xquad-de`` asks the 1,190 German questions; ``xquad-en`` asks the parallel English questions
  against the same German paragraphs (cross-lingual). The two files are parallel by position (checked).

What this module leaves out: indexing (see :mod:`eval.stores`) and scoring.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random

GOLD_PATH = Path(__file__).with_name("gold.jsonl")
XQUAD_DIR = Path(__file__).with_name("data") / "xquad"  # shipped (CC BY-SA 4.0, see its README)
XQUAD_NAMES = ("xquad-de", "xquad-en")


@dataclass(frozen=True)
class EvalItem:
    """One question with what a correct system should find and say."""

    id: str
    question: str
    lang: str  # language of the question: "de" or "en"
    answerable: bool
    sources: tuple[str, ...] = ()  # articles that hold the answer (any of them counts)
    answers: tuple[str, ...] = ()  # acceptable answer strings
    evidence: str = ""  # a verbatim span of a source that supports the answer
    history: tuple[str, ...] = ()  # earlier user turns of the conversation, oldest first
    split: str = ""  # withheld protocol: "calibration" or "test" (by XQuAD article, never both)
    reason: str = ""  # why an item is unanswerable: "withheld" (paragraph left out) or "removed" (sentence cut)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "question": self.question,
            "lang": self.lang,
            "answerable": self.answerable,
            "sources": list(self.sources),
            "answers": list(self.answers),
            "evidence": self.evidence,
            "history": list(self.history),
            "split": self.split,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CorpusText:
    """One document of a benchmark corpus, before indexing."""

    source: str
    title: str
    text: str


@dataclass(frozen=True)
class Dataset:
    name: str
    items: tuple[EvalItem, ...]
    corpus: tuple[CorpusText, ...] = ()  # empty: the corpus is the sample articles (gold set)
    corpus_id: str = ""  # identifies the corpus (store folder names are derived from it)
    meta: dict = field(default_factory=dict)


# ----- the gold set
def load_gold(path: str | Path = GOLD_PATH) -> Dataset:
    path = Path(path)
    items = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                items.append(
                    EvalItem(
                        id=str(row["id"]),
                        question=row["question"],
                        lang=row.get("lang", "de"),
                        answerable=bool(row["answerable"]),
                        sources=tuple(row.get("sources", ())),
                        answers=tuple(row.get("answers", ())),
                        evidence=row.get("evidence", ""),
                        history=tuple(row.get("history", ())),
                    )
                )
            except (KeyError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}:{line_no}: not a gold record ({exc})") from exc
    return Dataset(name="gold", items=tuple(items), corpus_id="sample-articles", meta={"path": str(path)})


# ----- XQuAD
def slug(title: str) -> str:
    """'Sky_(United_Kingdom)' -> 'sky-united-kingdom'."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "untitled"


def xquad_source(title: str, paragraph_index: int) -> str:
    return f"xquad/{slug(title)}/{paragraph_index}.txt"


def load_xquad(lang: str = "de", folder: str | Path = XQUAD_DIR, *, max_paragraphs: int | None = None) -> Dataset:
    """XQuAD questions in ``lang`` ('de' or 'en') over the German paragraphs.

    ``max_paragraphs`` keeps the first N paragraphs (in file order) and their questions:
    a fixed, smaller subset for CI.
    """
    if lang not in ("de", "en"):
        raise ValueError(f"XQuAD language must be 'de' or 'en', not {lang!r}")
    folder = Path(folder)
    german = _read_json(folder / "xquad.de.json")
    asked = german if lang == "de" else _read_json(folder / "xquad.en.json")
    corpus: list[CorpusText] = []
    items: list[EvalItem] = []
    pairs = _parallel_paragraphs(german, asked)
    if max_paragraphs is not None:
        pairs = pairs[:max_paragraphs]
    for title, index, para_de, para_q in pairs:
        source = xquad_source(title, index)
        context = para_de["context"]
        corpus.append(CorpusText(source=source, title=f"{title.replace('_', ' ')} ({index})", text=context))
        spans = None
        for qa_de, qa in zip(para_de["qas"], para_q["qas"], strict=True):
            gold = qa_de.get("answers") or []
            answers = tuple(dict.fromkeys(a["text"] for a in (qa.get("answers") or []) + gold))
            start = gold[0]["answer_start"] if gold else -1
            spans = spans if spans is not None else _sentence_spans(context)
            items.append(
                EvalItem(
                    id=f"{lang}-{qa['id']}",
                    question=qa["question"],
                    lang=lang,
                    answerable=True,
                    sources=(source,),
                    answers=answers,
                    evidence=evidence_sentence(context, start, spans),
                )
            )
    digest = hashlib.sha256("\x00".join(f"{c.source}\x01{c.text}" for c in corpus).encode()).hexdigest()[:10]
    return Dataset(
        name=f"xquad-{lang}",
        items=tuple(items),
        corpus=tuple(corpus),
        corpus_id=f"xquad-de-{digest}",
        meta={"folder": str(folder), "paragraphs": len(corpus)},
    )


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(
            f"XQuAD file {path} not found: pass the folder that holds xquad.de.json "
            "and xquad.en.json (the shipped copy is eval/data/xquad)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _parallel_paragraphs(german: dict, asked: dict) -> list[tuple[str, int, dict, dict]]:
    out = []
    if len(german["data"]) != len(asked["data"]):
        raise ValueError("the XQuAD files are not parallel: different numbers of articles")
    for art_de, art_q in zip(german["data"], asked["data"], strict=True):
        if len(art_de["paragraphs"]) != len(art_q["paragraphs"]):
            raise ValueError(f"the XQuAD files are not parallel in article {art_de['title']!r}")
        for index, (p_de, p_q) in enumerate(zip(art_de["paragraphs"], art_q["paragraphs"], strict=True)):
            if [q["id"] for q in p_de["qas"]] != [q["id"] for q in p_q["qas"]]:
                raise ValueError(f"the XQuAD files are not parallel in {art_de['title']!r} paragraph {index}")
            out.append((art_de["title"], index, p_de, p_q))
    return out


def evidence_sentence(context: str, start: int, spans: list[tuple[int, int]] | None = None) -> str:
    """The sentence of ``context`` around character ``start`` (the gold answer's sentence)."""
    if start < 0:
        return ""
    for s, e in spans if spans is not None else _sentence_spans(context):
        if s <= start < e:
            return context[s:e]
    return ""


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    from index.chunk import sentence_spans  # the product's German sentence splitter

    return sentence_spans(text)


# ----- the withheld protocol (answerability on public data)
WITHHELD_SEED = 7
WITHHELD_SHARE = 0.2
SPLITS = ("calibration", "test", "all")


def load_xquad_withheld(
    lang: str = "de",
    folder: str | Path = XQUAD_DIR,
    *,
    split: str = "test",
    seed: int = WITHHELD_SEED,
    share: float = WITHHELD_SHARE,
    removed_share: float = 0.0,
) -> Dataset:
    """XQuAD with a seeded ``share`` of its paragraphs left out of the corpus.

    Questions about an indexed paragraph are answerable; questions about a withheld one are
    not, while the other paragraphs of its article stay indexed as hard distractors. The
    48 XQuAD articles are split (seeded) into a calibration half and a test half, so that
    no article is in both: thresholds and weights are fitted on ``calibration`` only, and
    ``test`` reports them. ``split="all"`` keeps both halves.

    ``removed_share`` > 0 adds on-topic unanswerable questions (``xquad-de-removed``): in a
    seeded share of the indexed paragraphs, the sentence that answers one question is cut
    from the indexed text. That question (and any other whose answer went with it) becomes
    unanswerable while the rest of its paragraph stays indexed: retrieval finds the right
    paragraph, and only the fact is missing, as with most unanswerable questions about news.
    A question whose answer string also occurs outside the cut sentence is left out (neither
    label would be certain). Withheld paragraphs and the halves are the same as without it.
    """
    import random

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    full = load_xquad(lang, folder)
    rng = random.Random(seed)
    sources = [c.source for c in full.corpus]
    withheld = set(rng.sample(sources, round(share * len(sources))))
    articles = sorted({s.split("/")[1] for s in sources})
    rng.shuffle(articles)
    calibration = set(articles[: len(articles) // 2])
    corpus = [c for c in full.corpus if c.source not in withheld]
    removed: dict[str, set[str]] = {}  # source -> ids of the questions whose sentence was cut
    dropped: set[str] = set()
    if removed_share > 0:
        corpus, removed, dropped = _cut_answers(corpus, full.items, random.Random(f"{seed}-removed"), removed_share)
    items = []
    for item in full.items:
        half = "calibration" if item.sources[0].split("/")[1] in calibration else "test"
        if (split != "all" and half != split) or item.id in dropped:
            continue
        reason = (
            "withheld"
            if item.sources[0] in withheld
            else "removed"
            if item.id in removed.get(item.sources[0], ())
            else ""
        )
        answerable = not reason
        items.append(
            EvalItem(
                id=item.id,
                question=item.question,
                lang=item.lang,
                answerable=answerable,
                sources=item.sources if answerable else (),
                answers=item.answers if answerable else (),
                evidence=item.evidence if answerable else "",
                split=half,
                reason=reason,
            )
        )
    indexed = tuple(corpus)
    digest = hashlib.sha256("\x00".join(f"{c.source}\x01{c.text}" for c in indexed).encode()).hexdigest()[:10]
    kind = "removed" if removed_share > 0 else "withheld"
    return Dataset(
        name=f"xquad-{lang}-{kind}" + ("" if split == "test" else f"-{split}"),
        items=tuple(items),
        corpus=indexed,
        corpus_id=f"xquad-{kind}-{digest}",
        meta={
            **full.meta,
            "paragraphs": len(indexed),
            "withheld": len(withheld),
            "seed": seed,
            "split": split,
            "withheld_sources": sorted(withheld),
            "removed_share": removed_share,
            "removed_questions": sum(map(len, removed.values())),
            "left_out_questions": len(dropped),
        },
    )


REMOVED_SHARE = 0.5


def _cut_answers(
    corpus: list[CorpusText],
    items: tuple[EvalItem, ...],
    rng: random.Random,
    share: float,
) -> tuple[list[CorpusText], dict[str, set[str]], set[str]]:
    """Cut one question's answer sentence from a seeded ``share`` of the paragraphs.

    Returns the new corpus, the ids made unanswerable per source, and the ids left out
    because their label became uncertain (answer string still elsewhere in the text)."""
    by_source: dict[str, list[EvalItem]] = {}
    for item in items:
        by_source.setdefault(item.sources[0], []).append(item)
    out, removed, dropped = [], {}, set()
    for doc in corpus:
        questions = by_source.get(doc.source, [])
        if not questions or rng.random() >= share:
            out.append(doc)
            continue
        target = rng.choice(questions)
        start = doc.text.find(target.evidence) if target.evidence else -1
        if start < 0:
            out.append(doc)
            continue
        text = (doc.text[:start].rstrip() + " " + doc.text[start + len(target.evidence) :].lstrip()).strip()
        if any(a and a in text for a in target.answers):  # the fact is still there: no cut
            out.append(doc)
            continue
        gone = set()
        for q in questions:
            was = any(a and a in doc.text for a in q.answers)
            still = any(a and a in text for a in q.answers)
            if was and not still:
                gone.add(q.id)
            elif q.evidence and q.evidence not in text:
                dropped.add(q.id)  # its sentence went, its answer string is elsewhere: uncertain
        removed[doc.source] = gone
        out.append(CorpusText(source=doc.source, title=doc.title, text=text))
    return out, removed, dropped


def seeded_sample(items: tuple[EvalItem, ...], n: int, seed: int = WITHHELD_SEED) -> tuple[EvalItem, ...]:
    """``n`` items, seeded; when the set has unanswerable items, two thirds answerable and one
    third unanswerable (as far as there are), so a small sample still measures abstention."""
    import random

    rng = random.Random(seed)
    answerable = [i for i in items if i.answerable]
    unanswerable = [i for i in items if not i.answerable]
    if not unanswerable or not answerable:
        picked = rng.sample(list(items), min(n, len(items)))
    else:
        k_un = min(len(unanswerable), n // 3)
        k_an = min(len(answerable), n - k_un)
        picked = rng.sample(answerable, k_an) + rng.sample(unanswerable, k_un)
    order = {item.id: i for i, item in enumerate(items)}
    return tuple(sorted(picked, key=lambda i: order[i.id]))


# ----- by name
def load_dataset(name_or_path: str, *, max_paragraphs: int | None = None) -> Dataset:
    """'gold', 'xquad-de', 'xquad-en', a gold-format .jsonl file, or an XQuAD folder
    (optionally suffixed ':en' for the English questions)."""
    if name_or_path == "gold":
        return load_gold()
    if name_or_path in XQUAD_NAMES:
        return load_xquad(name_or_path[-2:], max_paragraphs=max_paragraphs)
    withheld = re.fullmatch(r"xquad-(de|en)-(withheld|removed)(?:-(calibration|test|all))?", name_or_path)
    if withheld:
        return load_xquad_withheld(
            withheld.group(1),
            split=withheld.group(3) or "test",
            removed_share=REMOVED_SHARE if withheld.group(2) == "removed" else 0.0,
        )
    path, _, lang = name_or_path.partition(":")
    if Path(path).is_dir():
        return load_xquad(lang or "de", path, max_paragraphs=max_paragraphs)
    if Path(path).suffix == ".jsonl" and Path(path).is_file():
        return load_gold(path)
    raise FileNotFoundError(
        f"Unknown dataset {name_or_path!r}: use gold, xquad-de, xquad-en, "
        "xquad-de-withheld[-calibration|-all], xquad-en-withheld[...], xquad-de-removed[...], a .jsonl gold "
        "file, or an XQuAD folder (FOLDER or FOLDER:en)."
    )
