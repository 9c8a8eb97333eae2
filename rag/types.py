"""The data chain every part of the product speaks: Article -> Chunk -> Passage -> Answer.

Plain frozen dataclasses, no library types. llama-index nodes, Chroma results and
HTTP payloads are converted to and from these at the edges (``index.store``,
``rag.llama``, ``rag.server``) and never travel further.

Offsets are character offsets into ``Article.text``, the *cleaned* article text as
kept in the store: ``chunk.text == article.text[chunk.start:chunk.end]`` always, and a
citation's ``quote == article.text[citation.start:citation.end]``.

Who published an article and when (:class:`ArticleMeta`) travels with it down the whole
chain: article record, every chunk, every passage. :class:`Filters` say which articles a
question may draw on; the store and the keyword index apply them before ranking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

_EPOCH = date(1970, 1, 1).toordinal()


def outlet_key(name: str) -> str:
    """How outlets are compared: case and spacing do not matter ("Radio  Elbtal" == "radio elbtal")."""
    return " ".join(name.casefold().split())


def day_number(day: date) -> int:
    """Days since 1970-01-01: the integer that date filters compare (Chroma metadata is scalar)."""
    return day.toordinal() - _EPOCH


@dataclass(frozen=True)
class ArticleMeta:
    """Who published an article and when, as the article itself (or its sidecar) states it.

    Every field is "" when the article does not say: nothing is guessed. Dates are ISO 8601
    as written, "2023-09-12" or "2023-09-12T08:15" (with "+02:00" only when the source
    gave an offset). ``updated`` is set only when it is later than ``published``.
    """

    outlet: str = ""  # the publishing site or broadcaster ("Radio Elbtal")
    url: str = ""
    author: str = ""  # several authors joined with ", "
    published: str = ""
    updated: str = ""

    @property
    def date(self) -> str:
        """The article's date: its publication date, else its last update ("" when neither is known)."""
        return self.published or self.updated

    @property
    def latest(self) -> str:
        """When the article last changed, as far as it says: its update, else its publication ("" when neither).
        Versions of a passage are ordered by it."""
        return max(self.updated, self.published)

    @property
    def day(self) -> int | None:
        """:attr:`date` as a day number (what ``since``/``until`` filters compare), None when undated."""
        return day_number(date.fromisoformat(self.date[:10])) if self.date else None

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    def __bool__(self) -> bool:
        return any(asdict(self).values())


NO_META = ArticleMeta()


@dataclass(frozen=True)
class Filters:
    """Which articles a question may draw on; empty admits everything.

    ``outlets`` compare by :func:`outlet_key`; ``sources`` are exact article names; ``since`` and
    ``until`` are inclusive days compared with :attr:`ArticleMeta.day`, so an undated article
    never passes a date filter.
    """

    outlets: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None

    def __bool__(self) -> bool:
        return bool(self.outlets or self.sources or self.since or self.until)

    @property
    def outlet_keys(self) -> tuple[str, ...]:
        return tuple(sorted({outlet_key(o) for o in self.outlets}))

    def admits(self, source: str, meta: ArticleMeta) -> bool:
        if self.sources and source not in self.sources:
            return False
        if self.outlets and outlet_key(meta.outlet) not in self.outlet_keys:
            return False
        if self.since or self.until:
            day = meta.day
            if day is None:
                return False
            if self.since and day < day_number(self.since):
                return False
            if self.until and day > day_number(self.until):
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "outlet": list(self.outlets),
            "source": list(self.sources),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass(frozen=True)
class Article:
    """One cleaned article as kept in the store."""

    source: str  # path relative to the folder it was indexed from (file name for single files)
    title: str
    text: str  # cleaned text; every offset in the product points into this string
    content_hash: str  # hash of the cleaned text and the index settings
    root: str = ""  # absolute folder it was indexed from ("" for uploads and single files)
    meta: ArticleMeta = NO_META
    story: str = ""  # the story it belongs to: articles sharing a near-duplicate passage or a URL (index.dedup)


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
    meta: ArticleMeta = NO_META  # its article's metadata (also in Chroma, for filtering)
    group: str = ""  # its near-duplicate group: the id of the chunk that started it ("" before grouping)
    story: str = ""  # its article's story


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
    meta: ArticleMeta = NO_META
    group: str = ""  # near-duplicate group (copies of one passage share it; "" for chunks never grouped)
    story: str = ""  # its article's story
    # The other copies of this passage that pass the question's filters (other outlets, older
    # versions), each a complete citable passage of its own article, newest first. Retrieval
    # returns one passage per group; these are the ones it folded into this one.
    also_in: tuple[Passage, ...] = ()

    @property
    def key(self) -> str:
        """What diversification counts: its group, else (never grouped) the passage itself."""
        return self.group or self.id

    @property
    def outlets(self) -> tuple[str, ...]:
        """The outlets that carry this passage: its own first, then its copies' (distinct, by
        :func:`outlet_key`; unknown outlets left out)."""
        seen: dict[str, str] = {}
        for p in (self, *self.also_in):
            if p.meta.outlet:
                seen.setdefault(outlet_key(p.meta.outlet), p.meta.outlet)
        return tuple(seen.values())

    @property
    def older_versions(self) -> tuple[Passage, ...]:
        """The copies this passage is a newer version of (dated earlier than it, by :attr:`ArticleMeta.latest`;
        an undated copy counts as older than a dated one). Same URL: the outlet updated it; another outlet: a later
        copy."""
        return tuple(p for p in self.also_in if p.meta.latest < self.meta.latest)

    @classmethod
    def from_chunk(
        cls, chunk: Chunk, score: float, *, dense_score: float | None = None, keyword_score: float | None = None
    ) -> Passage:
        return cls(
            id=chunk.id,
            source=chunk.source,
            title=chunk.title,
            text=chunk.text,
            start=chunk.start,
            end=chunk.end,
            score=score,
            meta=chunk.meta,
            group=chunk.group,
            story=chunk.story,
            dense_score=dense_score,
            keyword_score=keyword_score,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Passage:
        """The inverse of :meth:`to_json` (scores other than ``score`` are not in it)."""
        return cls(
            id=str(data["id"]),
            source=str(data["source"]),
            title=str(data["title"]),
            text=str(data["text"]),
            start=int(data["start"]),
            end=int(data["end"]),
            score=float(data["score"]),
            meta=ArticleMeta(**{k: str(v or "") for k, v in (data.get("meta") or {}).items()}),
            group=str(data.get("group") or ""),
            story=str(data.get("story") or ""),
            also_in=tuple(cls.from_json(c) for c in data.get("also_in") or ()),
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
            "meta": self.meta.to_json(),
            "group": self.group,
            "story": self.story,
            "also_in": [p.to_json() for p in self.also_in],
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
    # The publication period read from the question ("letzte Woche"): words, since, until (ISO or
    # None) and whether it was applied (False: no article was published then, all were searched).
    period: dict[str, Any] | None = None
    # Sources that state the answer's fact with another number: {"ours": "4,5 Millionen",
    # "theirs": "4,8 Millionen", "n": [1, 2]} (rag.answer.conflicts); None when none does.
    disagreement: dict[str, Any] | None = None

    def meta_of(self, citation: Citation) -> ArticleMeta:
        """The metadata of the article a citation quotes (from its passage)."""
        for p in self.passages:
            if p.id == citation.passage_id:
                return p.meta
            for copy in p.also_in:  # the same sentence in another outlet's copy
                if copy.id == citation.passage_id:
                    return copy.meta
        return NO_META

    def sources_of(self, n: int) -> list[str]:
        """The outlets (else article names) that the citations under ``[n]`` quote, in order."""
        names = []
        for c in self.citations:
            if c.n == n:
                meta = self.meta_of(c)
                name = meta.outlet or c.source
                if name not in names:
                    names.append(name)
        return names

    def to_json(self) -> dict[str, Any]:
        return {
            "confidence": None if self.confidence is None else round(float(self.confidence), 4),
            "signals": dict(self.signals),
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [{**c.to_json(), "meta": self.meta_of(c).to_json()} for c in self.citations],
            "passages": [p.to_json() for p in self.passages],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "standalone_question": self.standalone_question,
            "language": self.language,
            "generator": self.generator,
            "period": self.period,
            "disagreement": self.disagreement,
        }
