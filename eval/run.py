"""One evaluation run: a dataset through the pipeline users get, scored and reported.

:func:`evaluate` returns the whole report as a dict (what ``report.json`` holds):
retrieval metrics (article level, the pipeline's retrieval mode), and, when a generator
is given, every question asked through ``Pipeline.ask`` with answers, citations,
passages, judgements and timings, summarized into answer, grounding and latency
metrics. With an LLM judge on a dataset that has answers, the fast lexical judge is
calibrated against it on the same (sentence, passage) pairs.

:func:`write_report` writes report.json, report.md and the PNG plots (:mod:`eval.report`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, UTC
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from eval.answers import answer_record, error_record, score_record, summarize
from eval.datasets import Dataset, EvalItem, seeded_sample
from eval.decisions import answerability_curve, sentence_recall
from eval.judges import LexicalJudge, SupportJudge, calibrate
from eval.retrieval import evaluate_retrieval
from eval.stores import ensure_indexed

if TYPE_CHECKING:
    from rag.api import Pipeline

T = TypeVar("T")
REPORT_VERSION = 1


def evaluate(
    dataset: Dataset,
    pipeline: Pipeline,
    *,
    generator: str | None = None,
    judge: SupportJudge | None = None,
    limit: int | None = None,
    progress: bool = True,
    calibrate_judge: bool | None = None,
    on_record: Callable[[dict], None] | None = None,
) -> dict:
    """Evaluate ``dataset`` on ``pipeline`` (indexing its corpus first if needed)."""
    started = time.perf_counter()
    withheld = "withheld" in dataset.meta  # the withheld protocols: a seeded sample keeps both kinds of question
    items = (seeded_sample(dataset.items, limit) if withheld else dataset.items[:limit]) if limit else dataset.items
    indexing = ensure_indexed(pipeline, dataset, progress=progress)
    report: dict = {
        "version": REPORT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {"name": dataset.name, "questions": len(items), "corpus": dataset.corpus_id, **dataset.meta},
        "settings": _settings(pipeline),
        "generator": generator,
        "judge": getattr(judge, "name", None),
        "indexing": indexing,
        "metrics": {},
        "records": [],
    }
    retrieval = evaluate_retrieval(pipeline, items, progress="retrieval" if progress else None)
    report["metrics"]["retrieval"] = {"questions": retrieval["questions"], **retrieval["metrics"]}
    report["metrics"]["latency"] = {"retrieve_only_s": retrieval["latency"]}
    report["retrieval_records"] = retrieval["records"]
    if generator is not None:
        records = _ask_all(pipeline, items, generator, judge, progress, on_record)
        summary = summarize(records)
        report["metrics"]["answers"] = summary["answers"]
        report["metrics"]["grounding"] = summary["grounding"]
        report["metrics"]["latency"].update(summary["latency"])
        report["records"] = records
        reasons = any(r.get("reason") for r in records)
        report["slices"] = {
            name: summarize([r for r in records if keep(r)])
            for name, keep in SLICES.items()
            if reasons or not name.startswith("unanswerable-")
        }
        report["metrics"]["answerability"] = answerability_curve(records)
        report["metrics"]["sentences"] = sentence_recall(pipeline.answerer, items)
        report["metrics"]["sentences"]["budget"] = pipeline.settings.reader_sentences
        is_llm_judge = judge is not None and not isinstance(judge, LexicalJudge)
        if judge is not None and (calibrate_judge if calibrate_judge is not None else is_llm_judge):
            report["calibration"] = calibration(records, judge)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


SLICES = {
    "de": lambda r: r["lang"] == "de" and not r["history"],
    "en": lambda r: r["lang"] == "en" and not r["history"],
    "multi-turn": lambda r: bool(r["history"]),
    # the withheld protocols: answerable questions with one kind of unanswerable ones
    "unanswerable-withheld": lambda r: r["answerable"] or r.get("reason") == "withheld",
    "unanswerable-removed": lambda r: r["answerable"] or r.get("reason") == "removed",
}


def _settings(pipeline: Pipeline) -> dict:
    keep = (
        "embedder",
        "embedder_model",
        "chunk_size",
        "chunk_overlap",
        "top_k",
        "retrieval",
        "candidates",
        "rrf_k",
        "generator",
        "local_model",
        "min_support",
        "max_answer_tokens",
    )
    dumped = pipeline.settings.model_dump(mode="json")
    return {k: dumped[k] for k in keep if k in dumped}


def _ask_all(
    pipeline: Pipeline,
    items: Sequence[EvalItem],
    generator: str,
    judge: SupportJudge | None,
    progress: bool,
    on_record: Callable[[dict], None] | None = None,
) -> list[dict]:
    from rag.errors import RagError

    articles: dict[str, str | None] = {}

    def article_text(source: str) -> str | None:
        if source not in articles:
            try:
                articles[source] = pipeline.article(source).text
            except RagError:
                articles[source] = None
        return articles[source]

    if items:  # loads the models and primes the prompt cache, as `rag chat` / `rag serve` do at start
        pipeline.retrieve(items[0].question)
        if generator == pipeline.settings.generator:
            pipeline.warm().join()
    records = []
    for item in _bar(items, f"answers ({generator})", progress):
        try:
            answer = pipeline.ask(item.question, list(item.history), generator=generator)
            record = answer_record(item, answer)
        except RagError as exc:  # one bad question must not end a long run
            record = error_record(item, exc)
        records.append(score_record(record, item, judge, article_text))
        if on_record is not None:
            on_record(records[-1])
    return records


def calibration(records: list[dict], reference: SupportJudge, fast: SupportJudge | None = None) -> dict:
    """Fast judge vs the reference judge on the run's (sentence, passage) pairs: the cited
    passage, and for contrast the lowest-ranked retrieved passage the sentence does not cite."""
    fast = fast or LexicalJudge()
    pairs, rows = [], []
    for record in records:
        passages = record.get("passages") or []
        for j in record.get("judgements") or []:
            if j["n"] is None:
                continue
            cited = {x["n"] for x in record["judgements"] if x["sentence"] == j["sentence"] and x["n"]}
            others = [n for n in range(len(passages), 0, -1) if n not in cited]
            for n, ref in ((j["n"], j["score"]), *((m, None) for m in others[:1])):
                text = passages[n - 1]["text"]
                ref_score = ref if ref is not None else float(reference.supports(j["claim"], text))
                fast_score = float(fast.supports(j["claim"], text))
                pairs.append((fast_score, ref_score))
                rows.append(
                    {
                        "id": record["id"],
                        "lang": record["lang"],
                        "claim": j["claim"],
                        "n": n,
                        "cited": n == j["n"],
                        "fast": round(fast_score, 4),
                        "reference": round(ref_score, 4),
                    }
                )
    by_lang = {
        lang: calibrate([(r["fast"], r["reference"]) for r in rows if r["lang"] == lang])
        for lang in sorted({r["lang"] for r in rows})
    }
    return {"fast": fast.name, "reference": reference.name, **calibrate(pairs), "by_language": by_lang, "pairs": rows}


def _bar(items: Sequence[T], desc: str, progress: bool) -> Iterable[T]:
    if not progress:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="q")


def write_report(report: dict, out: Path, *, plots: bool = True) -> list[Path]:
    """report.json, report.md and PNG plots into ``out``; returns the files written."""
    from eval.report import markdown, plot_all

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "report.md"]
    written[0].write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    written[1].write_text(markdown(report), encoding="utf-8")
    if plots:
        written += plot_all(report, out)
    return written
