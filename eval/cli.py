"""``rag eval``: arguments and the run, in the shape :mod:`rag.cli` registers commands.

Wiring (in ``rag/cli.py``'s ``COMMANDS``)::

    from eval.cli import HELP as EVAL_HELP, add_arguments as eval_arguments, run as eval_run
    "eval": Command(EVAL_HELP, eval_arguments, eval_run),

``run(args, ctx)`` uses ``ctx.settings`` (global flags, RAG_* variables, settings file)
as the base settings, but always over the dataset's own store (``--eval-store`` or the
user cache), never the user's store. Importing this module loads no model.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.settings import HasSettings

HELP = "evaluate retrieval, answers and grounding on a gold set (or compare two reports)"
GENERATORS = ("extractive", "local", "openai")
JUDGES = ("lexical", "llm", "openai")
MODES = ("hybrid", "dense", "keyword")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        default="gold",
        metavar="NAME|PATH",
        help="gold (default; eval/gold.jsonl over the sample articles), xquad-de, xquad-en, "
        "the answerability protocols xquad-{de,en}-withheld and xquad-{de,en}-removed "
        "(test half; add -calibration or -all), a gold-format .jsonl file, or an XQuAD "
        "folder (FOLDER[:en])",
    )
    parser.add_argument(
        "--generator",
        choices=GENERATORS,
        default=None,
        help="answer generator (default: the configured one, as users get it)",
    )
    parser.add_argument("--retrieval-only", action="store_true", help="retrieval metrics only, no answers")
    parser.add_argument("--retrieval", choices=MODES, default=None, help="retrieval mode (default: the configured one)")
    parser.add_argument(
        "--judge",
        choices=JUDGES,
        default="lexical",
        help="support judge for citations: lexical (fast, default), llm (the local instruct "
        "model's yes/no probability), openai (the configured OpenAI-compatible server)",
    )
    parser.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="calibrate the lexical judge against the LLM judge (default: on with an LLM judge)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="first N questions only (the withheld/removed protocols: a seeded sample, 2/3 answerable)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="report folder (default: eval-reports/<dataset>-<generator>-<time>)",
    )
    parser.add_argument(
        "--eval-store",
        type=Path,
        default=None,
        metavar="DIR",
        help="store for the dataset's corpus (default: a cached folder per corpus)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("A", "B"),
        help="print metric-by-metric deltas of two report.json files (or their folders) and exit",
    )


def run(args: argparse.Namespace, ctx: HasSettings) -> int:
    from rag.errors import BadInput

    from eval.report import compare, load_report

    if args.compare:
        try:
            a, b = (load_report(p) for p in args.compare)
        except (OSError, ValueError) as exc:
            raise BadInput(f"Cannot read a report to compare: {exc}") from None
        print(compare(a, b))
        return 0
    if args.limit is not None and args.limit < 1:
        raise BadInput("--limit must be at least 1.")
    if args.calibrate and args.judge == "lexical":
        raise BadInput("--calibrate compares the lexical judge with an LLM judge: add --judge llm (or openai).")

    from eval.datasets import load_dataset
    from eval.judges import make_judge
    from eval.run import evaluate, write_report
    from eval.stores import open_pipeline

    try:
        dataset = load_dataset(args.dataset)
    except (FileNotFoundError, ValueError) as exc:
        raise BadInput(str(exc)) from None
    settings = ctx.settings.model_copy(update={"chroma_url": None})  # the eval store is always a local folder
    generator = None if args.retrieval_only else (args.generator or settings.generator)
    overrides = {"retrieval": args.retrieval, "generator": generator}  # None leaves a setting as it is
    pipeline = open_pipeline(dataset, args.eval_store, settings=settings, **overrides)
    judge = make_judge(args.judge, settings) if generator else None
    out = args.out or Path("eval-reports") / f"{dataset.name}-{generator or 'retrieval'}-{datetime.now():%Y%m%d-%H%M%S}"
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    partial = out / "records.partial.jsonl"  # a long LLM run that dies keeps what it has done
    partial.unlink(missing_ok=True)

    def keep(record: dict) -> None:
        with partial.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    report = evaluate(
        dataset,
        pipeline,
        generator=generator,
        judge=judge,
        limit=args.limit,
        progress=not args.no_progress,
        calibrate_judge=args.calibrate,
        on_record=keep,
    )
    written = write_report(report, out, plots=not args.no_plots)
    partial.unlink(missing_ok=True)

    from eval.report import summary_table

    print(summary_table(report))
    print(f"\nwrote {', '.join(str(p) for p in written)} ({time.perf_counter() - started:.0f} s)")
    return 0
