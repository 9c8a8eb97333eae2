"""The evaluation run end to end on a small gold set, with the deterministic fake
embedder and the extractive generator (no model): report.json / report.md / plots,
the CLI entry point, --compare, judge calibration, and the gate's threshold logic."""

from __future__ import annotations

import argparse
import json

import pytest

from eval.cli import add_arguments, run
from eval.datasets import load_gold
from eval.gate import check, thresholds_for
from eval.judges import LexicalJudge, LLMJudge
from eval.report import compare, flatten
from eval.run import evaluate, write_report
from eval.stores import open_pipeline
from rag.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n"


def small_gold(tmp_path, n_answerable: int = 4, n_unanswerable: int = 2):
    """The first answerable and unanswerable gold questions, plus one follow-up."""
    gold = load_gold()
    rows = (
        [i for i in gold.items if i.answerable and not i.history][:n_answerable]
        + [i for i in gold.items if i.history][:1]
        + [i for i in gold.items if not i.answerable][:n_unanswerable]
    )
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(i.to_json(), ensure_ascii=False) + "\n" for i in rows), encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path):
    return Settings(store=tmp_path / "unused", cache_dir=tmp_path / "cache", embedder="fake", generator="extractive")


class ScriptedYesNo:
    """Fake LLM: 'yes' when most of the claim's words are in the passage."""

    def yes_probability(self, messages):
        user = messages[-1]["content"]
        text, claim = user.split("Aussage / claim:")
        words = [w for w in claim.split("\n")[0].split() if len(w) > 3]
        return 0.95 if words and sum(w in text for w in words) / len(words) > 0.6 else 0.05


def test_evaluate_writes_every_part_of_the_report(tmp_path, settings):
    from eval.datasets import load_gold as load

    dataset = load(small_gold(tmp_path))
    pipeline = open_pipeline(dataset, tmp_path / "store", settings=settings)
    judge = LLMJudge(ScriptedYesNo(), name="llm:scripted")
    report = evaluate(dataset, pipeline, generator="extractive", judge=judge, progress=False)

    metrics = report["metrics"]
    assert report["judge"] == "llm:scripted" and report["generator"] == "extractive"
    assert {"hit@1", "hit@5", "recall@10", "mrr@10", "ndcg@10", "evidence@5"} <= set(metrics["retrieval"])
    assert {"contains", "token_f1", "abstention_accuracy", "false_abstention_rate"} <= set(metrics["answers"])
    assert {"citation_precision", "citation_recall", "quotes_verbatim"} <= set(metrics["grounding"])
    assert {"retrieve_s", "first_token_s", "total_s"} <= set(metrics["latency"])
    assert len(report["records"]) == 7
    record = next(r for r in report["records"] if not r["abstained"])
    assert {"question", "answer", "citations", "passages", "judgements", "timings", "scores"} <= set(record)
    assert metrics["grounding"]["quotes_verbatim"] == 1.0  # the product's quotes are article slices
    assert "calibration" in report and report["calibration"]["fast"] == "lexical"
    assert report["calibration"]["default"]["n"] >= 1

    written = write_report(report, tmp_path / "out")
    names = {p.name for p in written}
    assert {"report.json", "report.md", "retrieval.png", "answers.png", "latency.png", "judges.png"} <= names
    for p in written:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "## Retrieval" in md and "citation precision" in md and "llm:scripted" in md
    assert json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))["dataset"]["questions"] == 7


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_run_and_compare(tmp_path, settings, capsys):
    from rag.cli import Context

    gold = small_gold(tmp_path)
    store = tmp_path / "store"
    ctx = Context(settings)
    assert (
        run(_args("--dataset", str(gold), "--eval-store", str(store), "--out", str(tmp_path / "a"), "--no-plots"), ctx)
        == 0
    )
    out = capsys.readouterr().out
    assert "retrieval hit@1" in out and "citation precision" in out and "judge lexical" in out
    assert (
        run(
            _args(
                "--dataset",
                str(gold),
                "--eval-store",
                str(store),
                "--out",
                str(tmp_path / "b"),
                "--retrieval",
                "keyword",
                "--retrieval-only",
                "--no-plots",
            ),
            ctx,
        )
        == 0
    )
    capsys.readouterr()
    assert run(_args("--compare", str(tmp_path / "a"), str(tmp_path / "b" / "report.json")), ctx) == 0
    table = capsys.readouterr().out
    assert "retrieval.hit@1" in table and "B - A" in table
    # large committed reports are gzipped: a folder holding report.json.gz compares the same
    import gzip

    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "report.json.gz").write_bytes(gzip.compress((tmp_path / "b" / "report.json").read_bytes()))
    assert run(_args("--compare", str(tmp_path / "a"), str(tmp_path / "c")), ctx) == 0
    assert capsys.readouterr().out == table


def test_cli_compare_unreadable_report_is_bad_input(tmp_path, settings):
    from rag.cli import Context
    from rag.errors import BadInput

    with pytest.raises(BadInput):
        run(_args("--compare", str(tmp_path / "nope.json"), str(tmp_path / "nope2.json")), Context(settings))


def test_compare_prints_signed_deltas():
    a = {
        "dataset": {"name": "gold", "questions": 2},
        "metrics": {"answers": {"contains": 0.5, "false_abstention_rate": 0.2}},
    }
    b = {
        "dataset": {"name": "gold", "questions": 2},
        "metrics": {"answers": {"contains": 0.75, "false_abstention_rate": 0.3}, "retrieval": {"hit@1": 1.0}},
    }
    lines = {line.split()[0]: line for line in compare(a, b).splitlines() if line.startswith(("answers", "retrieval"))}
    assert "+0.250" in lines["answers.contains"] and lines["answers.contains"].endswith("better")
    assert "+0.100" in lines["answers.false_abstention_rate"] and lines["answers.false_abstention_rate"].endswith(
        "worse"
    )
    assert "–" in lines["retrieval.hit@1"]


def test_flatten_keeps_numbers_only():
    assert flatten({"a": {"b": 1, "c": "x", "d": {"e": 0.5}}, "f": True}) == {"a.b": 1.0, "a.d.e": 0.5}


@pytest.mark.parametrize(
    ("measured", "thresholds", "failing"),
    [
        ({"gold.retrieval.hit@1": 0.8}, {"gold.retrieval.hit@1": {"min": 0.75}}, []),
        ({"gold.retrieval.hit@1": 0.7}, {"gold.retrieval.hit@1": {"min": 0.75}}, ["gold.retrieval.hit@1"]),
        (
            {"gold.answers.false_abstention_rate": 0.4},
            {"gold.answers.false_abstention_rate": {"max": 0.3}},
            ["gold.answers.false_abstention_rate"],
        ),
        ({}, {"xquad-de.retrieval.recall@5": {"min": 0.9}}, ["xquad-de.retrieval.recall@5"]),
    ],
)
def test_gate_check(measured, thresholds, failing):
    assert [line.split()[0].rstrip(":") for line in check(measured, thresholds)] == failing


def test_thresholds_sit_below_measured_by_margin_or_one_question():
    measured = {
        "xquad-de.retrieval.recall@1": 0.912,
        "gold.answers.abstention_accuracy": 0.75,
        "gold.answers.false_abstention_rate": 0.2,
    }
    sizes = {"xquad-de": 300, "answers.abstention_accuracy": 12, "answers.false_abstention_rate": 52}
    got = thresholds_for(measured, sizes, 0.03)
    assert got["xquad-de.retrieval.recall@1"]["min"] == 0.88
    assert got["gold.answers.abstention_accuracy"]["min"] == 0.66  # one of 12 questions is 0.083
    assert got["gold.answers.false_abstention_rate"]["max"] == 0.23
    assert check(measured, got) == []


def test_lexical_judge_is_named_in_the_report(tmp_path, settings):
    from eval.datasets import load_gold as load

    dataset = load(small_gold(tmp_path, 2, 1))
    report = evaluate(
        dataset,
        open_pipeline(dataset, tmp_path / "s", settings=settings),
        generator="extractive",
        judge=LexicalJudge(),
        progress=False,
    )
    assert report["judge"] == "lexical" and "calibration" not in report
