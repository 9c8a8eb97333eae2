"""Hybrid retrieval: dense (Chroma) + BM25 (German analysis), fused by weighted
reciprocal rank.

Plain RRF gives the keyword ranking equal weight even when it is noise, which is what
it is for an English question over German articles (measured on XQuAD: R@5 falls from
.975 dense-only to .740 fused). So the keyword ranking is weighted by how much of the
question's term weight the corpus vocabulary knows (:meth:`KeywordIndex.coverage`):
a German question gets close to full weight, an English one mostly only for its names
and numbers. No language list, no per-corpus threshold.

Filters (outlet, source, date range) are pushed down into both searches, never applied
to their results: Chroma gets them as its ``where``, the keyword index as the set of
articles whose records pass them. A selective filter still fills k when k chunks pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from index.embed import Embedder
from index.keyword import KeywordIndex
from index.store import ChromaStore
from rag.types import ArticleMeta, Chunk, Filters, Passage

COVERAGE_POWER = 4.0  # keyword weight = coverage ** power (chosen on XQuAD de+en: best mean nDCG@10, see eval/results)


@dataclass(frozen=True)
class Retrieval:
    passages: list[Passage]
    seconds: float
    keyword_weight: float


class HybridRetriever:
    def __init__(self, store: ChromaStore, keyword: KeywordIndex, embedder: Embedder, *, mode: str = "hybrid",
                 candidates: int = 30, rrf_k: int = 60, current_hashes: Callable[[], dict[str, str]],
                 current_meta: Callable[[], dict[str, ArticleMeta]] | None = None) -> None:
        self.store = store
        self.keyword = keyword
        self.embedder = embedder
        self.mode = mode
        self.candidates = candidates
        self.rrf_k = rrf_k
        self._current_hashes = current_hashes  # source -> content hash of its complete record
        self._current_meta = current_meta  # source -> metadata of its complete record (for keyword filters)
        self._admitted = lru_cache(maxsize=8)(_admitted)

    def retrieve(self, question: str, k: int, filters: Filters | None = None) -> Retrieval:
        started = time.perf_counter()
        filters = filters or None
        n = max(self.candidates, k)
        found: list[tuple[Chunk, str, float]] = []
        hits = []
        weight = 0.0
        if self.mode in ("hybrid", "dense"):
            vector = self.embedder.embed([question], "query")[0]
            # Dense alone needs no fusion depth: k plus a margin for chunks of articles being re-indexed.
            found = self.store.query(vector, n if self.mode == "hybrid" else k + 5, filters)
        got: dict = {}
        if self.mode in ("hybrid", "keyword"):
            hits = self.keyword.search(question, n, self._sources_for(filters))
            got = self.store.get_chunks([h.id for h in hits])
            weight = 1.0 if self.mode == "keyword" else self.keyword.coverage(question) ** COVERAGE_POWER
        # Only chunks cut from the text their article's record now holds.
        hashes = self._current_hashes()
        dense = [(c, s) for c, h, s in found if hashes.get(c.source) == h]
        keyword = [(got[h.id][0], h.score) for h in hits if h.id in got and hashes.get(got[h.id][0].source) == got[h.id][1]]
        passages = fuse(dense, keyword, weight, self.rrf_k)[:k]
        return Retrieval(passages, time.perf_counter() - started, weight)

    def _sources_for(self, filters: Filters | None) -> frozenset[str] | None:
        """The articles whose records pass ``filters`` (None: no filter), cached per record map."""
        if not filters:
            return None
        if self._current_meta is None:
            raise ValueError("filtered keyword search needs current_meta (the records' metadata)")
        return self._admitted(_Records(self._current_meta()), filters)


class _Records:
    """A record map hashed by identity: the map is replaced, never changed, when records change."""

    def __init__(self, metas: dict[str, ArticleMeta]) -> None:
        self.metas = metas

    def __hash__(self) -> int:
        return id(self.metas)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Records) and other.metas is self.metas


def _admitted(records: _Records, filters: Filters) -> frozenset[str]:
    return frozenset(s for s, meta in records.metas.items() if filters.admits(s, meta))


def fuse(dense: list[tuple[Chunk, float]], keyword: list[tuple[Chunk, float]], keyword_weight: float,
         rrf_k: int) -> list[Passage]:
    """Weighted reciprocal-rank fusion; the dense ranking always has weight 1."""
    scores: dict[str, float] = {}
    chunks: dict[str, Chunk] = {}
    dense_scores: dict[str, float] = {}
    keyword_scores: dict[str, float] = {}
    for rank, (chunk, score) in enumerate(dense, start=1):
        scores[chunk.id] = scores.get(chunk.id, 0.0) + 1.0 / (rrf_k + rank)
        chunks[chunk.id] = chunk
        dense_scores[chunk.id] = score
    if keyword_weight > 0:
        for rank, (chunk, score) in enumerate(keyword, start=1):
            scores[chunk.id] = scores.get(chunk.id, 0.0) + keyword_weight / (rrf_k + rank)
            chunks[chunk.id] = chunk
            keyword_scores[chunk.id] = score
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return [Passage.from_chunk(chunks[i], scores[i], dense_score=dense_scores.get(i),
                               keyword_score=keyword_scores.get(i)) for i in order]
