"""Evaluation metrics as pure functions (no I/O, no models).

Ranking metrics work on a ranked list of *article* ids (sources) and a set of relevant
ones. Retrieval returns chunks, and one article may be cut into several chunks, so
:func:`rank_sources` first keeps each source's first occurrence. Relevance is binary.

Answer metrics follow SQuAD's normalization (lowercase, no punctuation, no articles,
single spaces), with German articles added: normalized containment (a gold string
occurs in the answer) and token F1 (best over the gold strings).
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

RANK_KS = (1, 3, 5, 10)


# ----- ranking (article level)
def rank_sources(sources: Iterable[str]) -> list[str]:
    """Distinct sources in first-seen order: chunk ranking -> article ranking."""
    return list(dict.fromkeys(sources))


def hit_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """1.0 when any relevant source is among the first ``k``, else 0.0."""
    rel = set(relevant)
    return 1.0 if any(s in rel for s in ranked[:k]) else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Share of the relevant sources found among the first ``k`` (0.0 when none are relevant)."""
    rel = set(relevant)
    if not rel:
        return 0.0
    return len(rel.intersection(ranked[:k])) / len(rel)


def mrr_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    """Reciprocal rank of the first relevant source within the first ``k``, else 0.0."""
    rel = set(relevant)
    for rank, s in enumerate(ranked[:k], start=1):
        if s in rel:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    """Binary-relevance nDCG: DCG of the ranking over DCG of an ideal one."""
    rel = set(relevant)
    if not rel:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank, s in enumerate(ranked[:k], start=1) if s in rel)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(rel), k) + 1))
    return dcg / ideal


def ranking_metrics(ranked: Sequence[str], relevant: Iterable[str], ks: Sequence[int] = RANK_KS) -> dict[str, float]:
    """hit@k and recall@k for each k, MRR@10 and nDCG@10, for one question."""
    rel = set(relevant)
    out: dict[str, float] = {}
    for k in ks:
        out[f"hit@{k}"] = hit_at_k(ranked, rel, k)
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranked, rel, k)
    out["mrr@10"] = mrr_at_k(ranked, rel, 10)
    out["ndcg@10"] = ndcg_at_k(ranked, rel, 10)
    return out


def evidence_hit(passages: Iterable[str], evidence: str) -> float:
    """1.0 when one passage contains the gold evidence (after normalization)."""
    want = normalize_answer(evidence)
    if not want:
        return 0.0
    return 1.0 if any(want in normalize_answer(p) for p in passages) else 0.0


# ----- answers
_ARTICLES = re.compile(r"\b(a|an|the|der|die|das|den|dem|des|ein|eine|einen|einem|einer|eines)\b")
_PUNCT = set(string.punctuation) | set("„“”‚‘’«»–—…·")


def normalize_answer(text: str) -> str:
    """Lowercase, punctuation and articles out, whitespace collapsed (SQuAD + German)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def contains_answer(answer: str, golds: Iterable[str]) -> float:
    """1.0 when a normalized gold string occurs in the normalized answer (on word boundaries)."""
    got = f" {normalize_answer(answer)} "
    for gold in golds:
        want = normalize_answer(gold)
        if want and f" {want} " in got:
            return 1.0
    return 0.0


def token_f1(answer: str, golds: Iterable[str]) -> float:
    """SQuAD token F1 of the answer against the best-matching gold string."""
    got = normalize_answer(answer).split()
    best = 0.0
    for gold in golds:
        want = normalize_answer(gold).split()
        if not got or not want:
            best = max(best, float(got == want))
            continue
        common = sum((Counter(got) & Counter(want)).values())
        if common:
            precision, recall = common / len(got), common / len(want)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


# ----- aggregates
def mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    data = sorted(values)
    if not data:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in 0..100, not {q}")
    pos = (len(data) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return data[low] + (data[high] - data[low]) * (pos - low)


def latency_summary(seconds: Iterable[float]) -> dict[str, float | None]:
    """Median and 95th percentile, in milliseconds."""
    values = [s * 1000 for s in seconds]
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return {
        "p50_ms": None if p50 is None else round(p50, 2),
        "p95_ms": None if p95 is None else round(p95, 2),
        "n": len(values),
    }


def average_metrics(rows: Iterable[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over the rows that have it."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for row in rows:
        for key, value in row.items():
            if value is None:
                continue
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}
