"""Answering as measured decisions: answer-sentence recall against the reader's budget, and
the answerability precision/recall curve with the operating point the product uses.

- sentence recall@B: share of answerable questions (with an evidence sentence) whose gold
  sentence is among the B best-ranked sentences, ranked by the product's own selection
  (``Answerer.select``), for B = 1..9; the reader sees ``reader_sentences`` of them.
- answerability curve: over the calibrated P(answerable) each answer carries
  (``Answer.confidence``), for thresholds from 0 to 1: precision = share of answered
  questions that are answerable, recall = share of answerable questions answered, and the
  abstention rate on unanswerable ones. The operating point is what the answers did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eval.datasets import EvalItem
    from rag.answer import Answerer

BUDGETS = tuple(range(1, 10))


def sentence_recall(answerer: Answerer, items: Sequence[EvalItem], budgets: Sequence[int] = BUDGETS) -> dict:
    from rag.lang import detect_language

    hits = dict.fromkeys(budgets, 0)
    n = 0
    for item in items:
        if not item.answerable or not item.evidence or item.history:
            continue
        n += 1
        _, evidence, _, order, _ = answerer.select(item.question, detect_language(item.question) != "de")
        gold = [i for i in order if _same(evidence.sentences[i].text, item.evidence)]
        if gold:
            rank = order.index(gold[0]) + 1
            for b in budgets:
                hits[b] += rank <= b
    return {"questions": n, **{f"@{b}": (hits[b] / n if n else None) for b in budgets}}


def _same(sentence: str, evidence: str) -> bool:
    a, b = " ".join(sentence.split()), " ".join(evidence.split())
    return bool(a) and (a in b or b in a)


def answerability_curve(records: Sequence[dict], steps: int = 20) -> dict:
    rows = [(r.get("confidence"), r["answerable"], r["abstained"]) for r in records if "error" not in r]
    scored = [(p, a, ab) for p, a, ab in rows if p is not None]
    answerable = sum(1 for _, a, _ in scored if a)
    unanswerable = len(scored) - answerable
    curve = []
    for k in range(steps + 1):
        t = k / steps
        answered = [(a) for p, a, _ in scored if p >= t]
        right = sum(answered)
        curve.append(
            {
                "threshold": t,
                "precision": right / len(answered) if answered else None,
                "recall": right / answerable if answerable else None,
                "abstention": (1 - (len(answered) - right) / unanswerable) if unanswerable else None,
            }
        )
    answered = [a for _, a, abstained in scored if not abstained]
    point = {
        "precision": sum(answered) / len(answered) if answered else None,
        "recall": sum(answered) / answerable if answerable else None,
        "abstention": (1 - (len(answered) - sum(answered)) / unanswerable) if unanswerable else None,
    }
    return {"questions": len(scored), "auc": _auc(scored), "curve": curve, "operating_point": point}


def _auc(scored: list) -> float | None:
    pos = [p for p, a, _ in scored if a]
    neg = [p for p, a, _ in scored if not a]
    if not pos or not neg:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))
