"""The data chain every part of the product speaks: Article -> Chunk -> Passage -> Answer.

Plain frozen dataclasses, no library types. llama-index nodes, Chroma results and
HTTP payloads are converted to and from these at the edges (``index.store``,
``rag.llama``, ``rag.server``) and never travel further.

Offsets are character offsets into ``Article.text``, the *cleaned* article text as
kept in the store: ``chunk.text == article.text[chunk.start:chunk.end]`` always, and a
citation's ``quote == article.text[citation.start:citation.end]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Article:
    """One cleaned article as kept in the store."""

    source: str  # path relative to the folder it was indexed from (file name for single files)
    title: str
    text: str  # cleaned text; every offset in the product points into this string
    content_hash: str  # hash of the cleaned text and the index settings
    root: str = ""  # absolute folder it was indexed from ("" for uploads and single files)


@dataclass(frozen=True)
class Chunk:
    """A span of an article, the unit that is embedded and retrieved."""

    id: str  # content hash: same article text and settings give the same id
    source: str
    title: str
    text: str
    start: int
    end: int
    index: int = 0  # position of the chunk within its article


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused score (higher is better)."""

    id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    score: float
    dense_score: float | None = None  # cosine similarity, when the dense retriever saw it
    keyword_score: float | None = None  # BM25 score, when the keyword retriever saw it

    @classmethod
    def from_chunk(cls, chunk: Chunk, score: float, **scores: float | None) -> Passage:
        return cls(
            id=chunk.id,
            source=chunk.source,
            title=chunk.title,
            text=chunk.text,
            start=chunk.start,
            end=chunk.end,
            score=score,
            **scores,
        )

    def to_json(self) -> dict[str, Any]:
        """The public JSON shape (CLI ``--json``, HTTP API)."""
        return {
            "id": self.id,
            "source": self.source,
            "title": self.title,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "score": round(float(self.score), 6),
        }


@dataclass(frozen=True)
class Citation:
    """Marker ``[n]`` in an answer, resolved to a verbatim span of an article."""

    n: int
    passage_id: str
    source: str
    start: int
    end: int
    quote: str  # == article.text[start:end]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """A grounded answer: text with ``[n]`` markers, the passages they point to."""

    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()  # numbered 1..len in the order [n] refers to
    timings: dict[str, float] = field(default_factory=dict)
    standalone_question: str = ""  # the question after multi-turn rewriting
    language: str = ""  # "de" or "en": language of the question and the answer
    generator: str = ""
    confidence: float | None = None  # calibrated P(the articles answer this), see rag.answer.decision
    signals: dict[str, float | None] = field(default_factory=dict)  # what that decision saw

    def to_json(self) -> dict[str, Any]:
        return {
            "confidence": None if self.confidence is None else round(float(self.confidence), 4),
            "signals": dict(self.signals),
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [c.to_json() for c in self.citations],
            "passages": [p.to_json() for p in self.passages],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "standalone_question": self.standalone_question,
            "language": self.language,
            "generator": self.generator,
        }
