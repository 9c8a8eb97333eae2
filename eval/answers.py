"""Answer and grounding metrics of ``Pipeline.ask`` answers (the call users get).

Per question: the answer against the gold strings (normalized containment, token F1),
abstention (right on unanswerable questions, wrong on answerable ones), and grounding:
each answer sentence with its ``[n]`` markers is judged against the cited passages by a
:class:`~eval.judges.SupportJudge`:

- citation precision: share of (sentence, citation) pairs whose passage supports the
  sentence (pooled over all answers);
- citation recall: share of answer sentences supported by at least one of their
  citations (a sentence without a marker counts as unsupported);
- verbatim quotes: share of citations whose quote is exactly ``article.text[start:end]``.

Abstentions have no sentences to judge; they are scored under answers only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from eval.datasets import EvalItem
from eval.judges import JUDGE_THRESHOLD, SupportJudge
from eval.metrics import contains_answer, evidence_hit, latency_summary, mean, token_f1

if TYPE_CHECKING:
    from rag.types import Answer

TIMINGS = ("retrieve_s", "first_token_s", "total_s")


def answer_record(item: EvalItem, answer: Answer) -> dict:
    """The per-question record kept in report.json (scores are added by :func:`score_record`)."""
    return {
        "id": item.id,
        "question": item.question,
        "history": list(item.history),
        "lang": item.lang,
        "answerable": item.answerable,
        "reason": item.reason,
        "gold_answers": list(item.answers),
        "gold_sources": list(item.sources),
        "answer": answer.answer,
        "abstained": bool(answer.abstained),
        "standalone_question": answer.standalone_question,
        "answer_language": answer.language,
        "generator": answer.generator,
        "confidence": answer.confidence,
        "signals": dict(answer.signals),
        "citations": [c.to_json() for c in answer.citations],
        "passages": [p.to_json() for p in answer.passages],
        "timings": {k: round(float(v), 4) for k, v in answer.timings.items()},
    }


def error_record(item: EvalItem, error: Exception) -> dict:
    return {
        "id": item.id,
        "question": item.question,
        "history": list(item.history),
        "lang": item.lang,
        "answerable": item.answerable,
        "gold_answers": list(item.answers),
        "gold_sources": list(item.sources),
        "error": f"{type(error).__name__}: {error}",
        "answer": "",
        "abstained": True,
        "citations": [],
        "passages": [],
        "timings": {},
    }


def judge_answer(record: dict, judge: SupportJudge) -> list[dict]:
    """One judgement per (sentence, cited passage); sentences without markers get n=None."""
    from rag.answer.citations import parse_answer

    if record["abstained"] or not record["answer"]:
        return []
    passages = record["passages"]
    threshold = getattr(judge, "threshold", JUDGE_THRESHOLD)
    out = []
    for index, claim in enumerate(parse_answer(record["answer"])):
        cites = [n for n in claim.cites if 1 <= n <= len(passages)]
        if not cites:
            out.append({"sentence": index, "claim": claim.text, "n": None, "score": 0.0, "supported": False})
        for n in cites:
            score = float(judge.supports(claim.text, passages[n - 1]["text"]))
            out.append(
                {
                    "sentence": index,
                    "claim": claim.text,
                    "n": n,
                    "score": round(score, 4),
                    "supported": score >= threshold,
                }
            )
    return out


def score_record(
    record: dict, item: EvalItem, judge: SupportJudge | None, article_text: Callable[[str], str | None]
) -> dict:
    """Adds ``scores`` (and ``judgements`` when a judge is given) to a record; returns it."""
    scores: dict[str, float | None] = {"abstained": float(record["abstained"])}
    if item.answerable:
        answered = not record["abstained"]
        scores["contains"] = contains_answer(record["answer"], item.answers) if answered else 0.0
        scores["token_f1"] = token_f1(record["answer"], item.answers) if answered else 0.0
        if item.evidence:
            scores["evidence_in_passages"] = evidence_hit([p["text"] for p in record["passages"]], item.evidence)
    if judge is not None:
        judgements = judge_answer(record, judge)
        record["judgements"] = judgements
        cited = [j for j in judgements if j["n"] is not None]
        sentences = {j["sentence"] for j in judgements}
        supported = {j["sentence"] for j in judgements if j["supported"]}
        scores["citation_pairs"] = len(cited)
        scores["citation_supported"] = sum(j["supported"] for j in cited)
        scores["sentences"] = len(sentences)
        scores["sentences_supported"] = len(supported)
    quotes = record["citations"]
    scores["quotes"] = len(quotes)
    scores["quotes_verbatim"] = sum(_verbatim(c, article_text) for c in quotes)
    record["scores"] = scores
    return record


def _verbatim(citation: dict, article_text: Callable[[str], str | None]) -> bool:
    text = article_text(citation["source"])
    return (
        bool(citation["quote"]) and text is not None and text[citation["start"] : citation["end"]] == citation["quote"]
    )


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def summarize(records: Sequence[dict]) -> dict[str, dict]:
    """Answer, grounding and latency metrics over scored records."""
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    answered = [r for r in answerable if not r["abstained"]]
    s = [r["scores"] for r in records]
    answers = {
        "questions": len(records),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "contains": mean(r["scores"]["contains"] for r in answerable),
        "token_f1": mean(r["scores"]["token_f1"] for r in answerable),
        "contains_when_answered": mean(r["scores"]["contains"] for r in answered),
        "abstention_accuracy": mean(float(r["abstained"]) for r in unanswerable),
        "false_abstention_rate": mean(float(r["abstained"]) for r in answerable),
        "evidence_in_passages": mean(
            r["scores"]["evidence_in_passages"] for r in answerable if "evidence_in_passages" in r["scores"]
        ),
        "errors": sum(1 for r in records if "error" in r),
    }
    grounding = {
        "answers_judged": sum(1 for r in records if r.get("judgements")),
        "citation_precision": _ratio(
            sum(x.get("citation_supported", 0) for x in s), sum(x.get("citation_pairs", 0) for x in s)
        ),
        "citation_recall": _ratio(
            sum(x.get("sentences_supported", 0) for x in s), sum(x.get("sentences", 0) for x in s)
        ),
        "quotes_verbatim": _ratio(sum(x["quotes_verbatim"] for x in s), sum(x["quotes"] for x in s)),
        "citations": sum(x["quotes"] for x in s),
    }
    # First token of answered questions only: an abstention writes a fixed sentence, no model runs.
    latency = {
        k: latency_summary(
            r["timings"][k]
            for r in records
            if k in r.get("timings", {}) and not (k == "first_token_s" and r["abstained"])
        )
        for k in TIMINGS
    }
    return {"answers": answers, "grounding": grounding, "latency": latency}
