"""rag bench: corpora of a given size, percentiles, the report, and one real run.

Times are never asserted: only that every figure is measured, consistent (stages add
up, chunk counts near the target) and reported.
"""

from __future__ import annotations

import json

import pytest

from eval.bench import build_corpus, bench, markdown, percentiles, timed_queries
from rag.cli import main


def test_percentiles_are_nearest_rank_in_milliseconds():
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    got = percentiles(values)
    assert got == {"n": 100, "p50_ms": 50.5, "p95_ms": 95.0}
    assert percentiles([]) == {"n": 0, "p50_ms": None, "p95_ms": None}


def test_timed_queries_times_every_query_once_also_concurrently():
    seen = []
    for concurrency in (1, 8):
        seen.clear()
        got = timed_queries(seen.append, [f"q{i}" for i in range(40)], concurrency)
        assert sorted(seen) == sorted(f"q{i}" for i in range(40))
        assert got["n"] == 40 and got["queries_per_s"] > 0


def test_corpus_reaches_its_size_with_distinct_real_articles(tmp_path):
    built = build_corpus(300, tmp_path / "a", chars_per_chunk=800.0, seed=3)
    files = sorted((tmp_path / "a").iterdir())
    texts = [f.read_text(encoding="utf-8") for f in files]
    assert built["articles"] == len(files) and built["characters"] >= 300 * 800
    assert len(set(texts)) == len(texts)  # no two articles alike
    assert all(len(t.split("\n\n")) >= 4 for t in texts)  # a title and 3-6 paragraphs
    again = build_corpus(300, tmp_path / "b", chars_per_chunk=800.0, seed=3)
    assert again == built and [f.read_text(encoding="utf-8") for f in sorted((tmp_path / "b").iterdir())] == texts


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--sizes", "1k"], "--sizes takes numbers"),
        (["bench", "--sizes", "10"], "at least 50 chunks"),
        (["bench", "--generators", "local:gpt-4"], "Unknown generator"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_a_small_real_run_measures_everything_it_reports(tmp_path):
    result = bench(
        (120,), "fake", ("extractive",), baseline=True, out=tmp_path, raw_sample=40, queries=12, log=lambda _: None
    )
    saved = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(result))
    entry = result["sizes"]["120"]
    ours, base = entry["ours"], entry["llamaindex"]
    ix = ours["indexing"]
    assert ix["articles"] == entry["corpus"]["articles"]
    assert 0.6 * 120 <= ix["chunks"] <= 1.6 * 120
    assert sum(ix["stages_s"].values()) <= ix["seconds"] * 1.05
    assert "| chunks | indexing: ours | llama-index |" in markdown(result)
    assert ix["peak_rss_mb"] > 50 and ours["raw_embedder"]["chunks_per_s"] > 0
    for mode in ("dense", "keyword", "hybrid"):
        assert ours["retrieval"][mode]["single"]["n"] == 12
        assert ours["retrieval"][mode]["concurrent_8"]["n"] == 12
    assert base["indexing"]["articles"] == ix["articles"] and base["indexing"]["chunks"] > 0
    assert base["retrieval"]["dense"]["single"]["n"] == 12
    (answers,) = result["answers"]
    assert answers["generator"] == "extractive" and len(answers["questions"]) == 5
    assert all(q["total_s"] >= 0 and q["answer"] for q in answers["questions"])
    md = (tmp_path / "bench.md").read_text(encoding="utf-8")
    assert md == markdown(result)
    assert f"| {ix['chunks']:,} | hybrid |" in md and "| extractive |" in md


def test_report_notes_are_printed():
    result = {
        "created": "now",
        "machine": {"cpu": "x", "cores": 2},
        "sizes": {},
        "answers": [],
        "settings": {"embedder": "fake", "chunk_size": 200, "embed_batch_size": 32, "retrieval_queries": 1, "top_k": 5},
        "notes": ["100k: measured in two runs"],
    }
    assert "Note: 100k: measured in two runs" in markdown(result)
