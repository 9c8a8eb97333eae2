"""Retrieval metrics through the product's own retrieval, per mode and per fusion rule.

:func:`evaluate_retrieval` asks ``Pipeline.retrieve_timed`` (the call users get) for
``CHUNKS`` passages per question, turns the chunk ranking into an article ranking
(first occurrence of each source) and scores it: hit@k / recall@k for k = 1, 3, 5, 10,
MRR@10, nDCG@10, evidence hit (a passage among the first 1, 3, 5 chunks contains the gold
evidence sentence), and the retrieve time.

:func:`fusion_variants` scores fusion rules without touching :mod:`rag.retrieve`: it
collects each question's dense and keyword candidates once, the way ``HybridRetriever``
does, and re-fuses them with :func:`rag.retrieve.fuse` under other keyword weights. The
product's three modes are such rules too, which makes large benchmarks three times
cheaper (one query embedding per question); :func:`timed_sample` runs the real
``Pipeline.retrieve`` on a sample for latency and to check the rankings are identical.

Multi-turn gold questions are retrieved with their earlier turns prepended (a plain
stand-in for the answerer's question rewriting); unanswerable ones are skipped here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from eval.datasets import EvalItem
from eval.metrics import average_metrics, evidence_hit, latency_summary, rank_sources, ranking_metrics

if TYPE_CHECKING:
    import numpy as np

    from rag.api import Pipeline

T = TypeVar("T")

CHUNKS = 20  # chunks asked for per question: enough to fill 10 distinct articles where chunks repeat articles
EVIDENCE_KS = (1, 3, 5)  # chunk cut-offs; 5 = the passages an answer is written from (Settings.top_k default)
MODES = ("dense", "keyword", "hybrid")


def retrieval_query(item: EvalItem) -> str:
    """What is sent to retrieve: the question, after the earlier turns when there are any."""
    return " ".join([*item.history, item.question]) if item.history else item.question


def retrievable(items: Sequence[EvalItem]) -> list[EvalItem]:
    return [i for i in items if i.answerable and i.sources]


def score_ranking(item: EvalItem, sources: Sequence[str], texts: Sequence[str]) -> dict[str, float]:
    """All retrieval metrics of one question from its chunk ranking (sources and texts, best first)."""
    row = ranking_metrics(rank_sources(sources), item.sources)
    if item.evidence:
        for k in EVIDENCE_KS:
            row[f"evidence@{k}"] = evidence_hit(texts[:k], item.evidence)
    return row


def evaluate_retrieval(
    pipeline: Pipeline,
    items: Sequence[EvalItem],
    *,
    chunks: int = CHUNKS,
    progress: str | None = None,
) -> dict:
    """Per-question records and mean metrics of one pipeline (its ``retrieval`` mode)."""
    items = retrievable(items)
    pipeline.retrieve_timed("Warm-up: lädt das Modell.", 1)  # model load is not a retrieve time
    records: list[dict[str, Any]] = []
    for item in _progress(items, progress):
        passages, seconds = pipeline.retrieve_timed(retrieval_query(item), chunks)
        row = score_ranking(item, [p.source for p in passages], [p.text for p in passages])
        records.append(
            {
                "id": item.id,
                "lang": item.lang,
                "turns": len(item.history) + 1,
                "query": retrieval_query(item),
                "relevant": list(item.sources),
                "ranked": rank_sources(p.source for p in passages)[:10],
                "metrics": row,
                "retrieve_s": round(seconds, 5),
            }
        )
    return {
        "mode": pipeline.settings.retrieval,
        "questions": len(records),
        "metrics": average_metrics(r["metrics"] for r in records),
        "latency": latency_summary(r["retrieve_s"] for r in records),
        "records": records,
    }


def slice_metrics(result: dict, keep: Callable[[dict], bool]) -> dict:
    """Mean metrics and latency over the records ``keep`` accepts."""
    rows = [r for r in result["records"] if keep(r)]
    return {
        "questions": len(rows),
        "metrics": average_metrics(r["metrics"] for r in rows),
        "latency": latency_summary(r["retrieve_s"] for r in rows),
    }


# ----- fusion variants
@dataclass(frozen=True)
class Candidates:
    """One question's dense and keyword candidates, as HybridRetriever collects them."""

    dense: list  # [(Chunk, cosine)]
    keyword: list  # [(Chunk, bm25)]
    coverage: float


def collect_candidates(
    pipeline: Pipeline,
    question: str,
    n: int,
    hashes: dict[str, str] | None = None,
    vector: np.ndarray | None = None,
) -> Candidates:
    """Mirror of ``HybridRetriever.retrieve`` up to fusion, with the same content-hash filter."""
    hashes = hashes if hashes is not None else {s: a.content_hash for s, a in pipeline.store.articles().items()}
    if vector is None:
        vector = pipeline.embedder.embed([question], "query")[0]
    dense = [(c, s) for c, h, s in pipeline.store.query(vector, n) if hashes.get(c.source) == h]
    hits = pipeline.keyword.search(question, n)
    got = pipeline.store.get_chunks([h.id for h in hits])
    keyword = [(got[h.id][0], h.score) for h in hits if h.id in got and hashes.get(got[h.id][0].source) == got[h.id][1]]
    return Candidates(dense, keyword, pipeline.keyword.coverage(question))


FusionRule = tuple[bool, Callable[[float], float]]  # (use the dense ranking, coverage -> keyword weight)

# The product's modes as fusion rules over the same candidates (HybridRetriever does exactly this).
MODE_RULES: dict[str, FusionRule] = {
    "dense": (True, lambda c: 0.0),
    "keyword": (False, lambda c: 1.0),
}


def fuse_candidates(cand: Candidates, rule: FusionRule, rrf_k: int, k: int) -> list:
    from rag.retrieve import fuse

    use_dense, weight = rule
    return fuse(cand.dense if use_dense else [], cand.keyword, weight(cand.coverage), rrf_k)[:k]


def fusion_variants(
    pipeline: Pipeline,
    items: Sequence[EvalItem],
    rules: dict[str, FusionRule],
    *,
    chunks: int = CHUNKS,
    progress: str | None = None,
) -> dict:
    """Mean metrics per named fusion rule, from one candidate collection per question.

    Also returns each question's chunk-id ranking per rule (``rankings``), so a caller can
    check a rule against what ``Pipeline.retrieve`` returns for the same question.
    """
    n = max(pipeline.settings.candidates, chunks)
    rows: dict[str, list[dict]] = {name: [] for name in rules}
    rankings: dict[str, dict[str, list[str]]] = {name: {} for name in rules}
    coverages = []
    started = time.perf_counter()
    hashes = {s: a.content_hash for s, a in pipeline.store.articles().items()}
    items = retrievable(items)
    queries = [retrieval_query(i) for i in items]
    vectors = _embed_queries(pipeline, queries, f"{progress} (embedding)" if progress else None)
    for item, query, vector in zip(_progress(items, progress), queries, vectors, strict=True):
        cand = collect_candidates(pipeline, query, n, hashes, vector)
        coverages.append(cand.coverage)
        for name, rule in rules.items():
            fused = fuse_candidates(cand, rule, pipeline.settings.rrf_k, chunks)
            rows[name].append(score_ranking(item, [p.source for p in fused], [p.text for p in fused]))
            rankings[name][item.id] = [p.id for p in fused]
    return {
        "rules": {name: {"questions": len(r), "metrics": average_metrics(r)} for name, r in rows.items()},
        "coverage_mean": sum(coverages) / len(coverages) if coverages else None,
        "seconds": round(time.perf_counter() - started, 1),
        "rankings": rankings,
    }


def timed_sample(
    pipeline: Pipeline,
    items: Sequence[EvalItem],
    every: int,
    *,
    chunks: int = CHUNKS,
    progress: str | None = None,
) -> dict:
    """``Pipeline.retrieve_timed`` on every ``every``-th question: latency and the rankings."""
    sample = retrievable(items)[::every]
    pipeline.retrieve_timed("Warm-up: lädt das Modell.", 1)
    seconds, rankings = [], {}
    for item in _progress(sample, progress):
        passages, s = pipeline.retrieve_timed(retrieval_query(item), chunks)
        seconds.append(s)
        rankings[item.id] = [p.id for p in passages]
    return {"latency": latency_summary(seconds), "rankings": rankings}


def _embed_queries(pipeline: Pipeline, queries: list[str], progress: str | None, batch: int = 32) -> np.ndarray:
    """Query vectors in batches (far cheaper than one call per question on a busy CPU)."""
    import numpy as np

    parts = [
        pipeline.embedder.embed(queries[i : i + batch], "query")
        for i in _progress(range(0, len(queries), batch), progress)
    ]
    return np.vstack(parts) if parts else np.zeros((0, pipeline.embedder.dim), dtype=np.float32)


def _progress(items: Sequence[T], desc: str | None) -> Iterable[T]:
    if not desc:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="q", leave=False)
