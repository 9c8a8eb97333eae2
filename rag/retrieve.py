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

Near-duplicates (:mod:`index.dedup`) are folded: k passages are k different groups, in the
order of each group's best-ranked member. A group is shown by its newest ranked member (copies
are equally relevant by definition, so the newer version wins; then the better score), and
the group's other copies that pass the filters ride along as ``Passage.also_in``, each a
complete passage of its own article. When copies crowd the candidates, the search is repeated
deeper (4x, at most twice) until k groups are found or nothing more comes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from index.embed import Embedder
from index.keyword import KeywordIndex
from index.store import ChromaStore
from rag.types import ArticleMeta, Chunk, Filters, Passage

DEEPER, REFILLS = 4, 2  # when copies fill the candidates: search this many times deeper, at most this often
COVERAGE_POWER = 4.0  # keyword weight = coverage ** power (chosen on XQuAD de+en: best mean nDCG@10, see eval/results)


@dataclass(frozen=True)
class Retrieval:
    passages: list[Passage]
    seconds: float
    keyword_weight: float


class HybridRetriever:
    def __init__(
        self,
        store: ChromaStore,
        keyword: KeywordIndex,
        embedder: Embedder,
        *,
        mode: str = "hybrid",
        candidates: int = 30,
        rrf_k: int = 60,
        current_hashes: Callable[[], dict[str, str]],
        current_meta: Callable[[], dict[str, ArticleMeta]] | None = None,
        confirm_hashes: Callable[[set[str]], Mapping[str, str | None]] | None = None,
    ) -> None:
        self.store = store
        self.keyword = keyword
        self.embedder = embedder
        self.mode = mode
        self.candidates = candidates
        self.rrf_k = rrf_k
        self._current_hashes = current_hashes  # source -> content hash of its complete record
        self._current_meta = current_meta  # source -> metadata of its complete record (for keyword filters)
        self._confirm_hashes = confirm_hashes  # the map with some sources' records read live
        self._admitted = lru_cache(maxsize=8)(_admitted)

    def retrieve(self, question: str, k: int, filters: Filters | None = None) -> Retrieval:
        started = time.perf_counter()
        filters = filters or None
        n = max(self.candidates, k)
        # Dense alone needs no fusion depth: k plus a margin for chunks of articles being re-indexed.
        dense_n = n if self.mode == "hybrid" else k + 5
        vector = self.embedder.embed([question], "query")[0] if self.mode in ("hybrid", "dense") else None
        weight = 0.0
        if self.mode in ("hybrid", "keyword"):
            weight = 1.0 if self.mode == "keyword" else self.keyword.coverage(question) ** COVERAGE_POWER
        for attempt in range(REFILLS + 1):
            ranked, full = self._ranked(question, vector, n, dense_n, weight, filters)
            passages = fold_copies(ranked, k)
            if len(passages) >= k or not full or attempt == REFILLS:
                break
            n, dense_n = n * DEEPER, dense_n * DEEPER
        return Retrieval(self._with_copies(passages, filters), time.perf_counter() - started, weight)

    def _ranked(
        self,
        question: str,
        vector: np.ndarray | None,
        n: int,
        dense_n: int,
        weight: float,
        filters: Filters | None,
    ) -> tuple[list[Passage], bool]:
        """Fused candidates, and whether a search came back full (a deeper one could find more)."""
        found: list[tuple[Chunk, str, float]] = []
        hits = []
        got: dict = {}
        if vector is not None:
            found = self.store.query(vector, dense_n, filters)
        if self.mode in ("hybrid", "keyword"):
            hits = self.keyword.search(question, n, self._sources_for(filters))
            got = self.store.get_chunks([h.id for h in hits])
        # Only chunks cut from the text their article's record now holds.
        hashes = self._hashes_for([(c.source, h) for c, h, _ in found] + [(c.source, h) for c, h in got.values()])
        dense = [(c, s) for c, h, s in found if hashes.get(c.source) == h]
        keyword = [
            (got[h.id][0], h.score) for h in hits if h.id in got and hashes.get(got[h.id][0].source) == got[h.id][1]
        ]
        full = (vector is not None and len(found) >= dense_n) or len(hits) >= n
        return fuse(dense, keyword, weight, self.rrf_k), full

    def _with_copies(self, passages: list[Passage], filters: Filters | None) -> list[Passage]:
        """Every copy of each passage that passes the filters joins its ``also_in``, not only the ranked ones."""
        if not any(p.group for p in passages):
            return passages
        hashes = self._current_hashes()
        members = self.store.group_members([p.group for p in passages if p.group], filters)
        out = []
        for p in passages:
            known = {p.id, *(c.id for c in p.also_in)}
            extra = [
                Passage.from_chunk(c, p.score)
                for i, (c, h) in members.items()
                if c.group == p.group and i not in known and hashes.get(c.source) == h
            ]
            out.append(replace(p, also_in=newest_first([*p.also_in, *extra])) if extra else p)
        return out

    def _hashes_for(self, candidates: list[tuple[str, str]]) -> Mapping[str, str | None]:
        """The record map, with the records read live for the candidates' articles whose chunks it
        does not admit: another process may have added or changed them since the map was read, and
        an update must not hide its article from this process until the next refresh."""
        hashes = self._current_hashes()
        disagree = {source for source, h in candidates if hashes.get(source) != h}
        if disagree and self._confirm_hashes is not None:
            return self._confirm_hashes(disagree)  # None: no record, nothing matches
        return hashes

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


def fuse(
    dense: list[tuple[Chunk, float]], keyword: list[tuple[Chunk, float]], keyword_weight: float, rrf_k: int
) -> list[Passage]:
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
    return [
        Passage.from_chunk(chunks[i], scores[i], dense_score=dense_scores.get(i), keyword_score=keyword_scores.get(i))
        for i in order
    ]


def fold_copies(ranked: list[Passage], k: int) -> list[Passage]:
    """The first k near-duplicate groups of a ranking, each as one passage: its newest member (then
    the best ranked), with the group's other ranked members in ``also_in``."""
    groups: dict[str, list[Passage]] = {}
    for p in ranked:
        groups.setdefault(p.key, []).append(p)
    out = []
    for members in list(groups.values())[:k]:
        shown, *others = newest_first(members)
        out.append(replace(shown, also_in=tuple(others)) if others else shown)
    return out


def newest_first(passages: list[Passage]) -> tuple[Passage, ...]:
    """Later versions first (:attr:`ArticleMeta.latest`; undated last), then the better score; stable."""
    return tuple(sorted(passages, key=lambda p: (p.meta.latest, p.score), reverse=True))
