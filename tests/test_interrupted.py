"""A `rag index` run killed half-way (SIGKILL) leaves a store the next run completes,
with exactly the chunks an uninterrupted run produces: none missing, none duplicated,
none stale, Chroma and the keyword index in step."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PYTHON, clean_env, run_rag, write_articles

from index.keyword import KeywordIndex
from rag.api import Pipeline
from rag.settings import Settings

N_ARTICLES = 60
# Small chunks: several embedding groups per run, so the kill lands between and inside them.
SIZES = {"RAG_CHUNK_SIZE": "64", "RAG_CHUNK_OVERLAP": "16"}


def keyword_rows(store: Path) -> int:
    """Chunks the running indexer has committed to its keyword index (read-only peek)."""
    for path in store.glob("keyword-*.sqlite"):
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
        except sqlite3.Error:
            return 0
        try:
            return db.execute("SELECT count(*) FROM docs").fetchone()[0]
        except sqlite3.Error:
            return 0
        finally:
            db.close()
    return 0


def snapshot(store: Path) -> tuple[list[str], list[str], dict[str, int]]:
    """(Chroma chunk ids, keyword chunk ids as persisted, chunks per article record), read cold."""
    settings = Settings(store=store, embedder="fake", chunk_size=64, chunk_overlap=16)
    pipeline = Pipeline(settings)
    got = pipeline.store._chunks.get(include=[])  # raw ids, so duplicates would show
    keyword = KeywordIndex(pipeline._keyword_path())
    rows = [r[0] for r in keyword._db.execute("SELECT id FROM docs")]
    return sorted(got["ids"]), sorted(rows), {i.source: i.chunks for i in pipeline.sources()}


@pytest.mark.slow
def test_killed_index_run_is_completed_by_the_next_run(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    write_articles(folder, N_ARTICLES)
    store = tmp_path / "interrupted"
    env = clean_env(**SIZES)

    proc = subprocess.Popen(
        [PYTHON, "-m", "rag", "--store", str(store), "--embedder", "fake", "index", str(folder)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while keyword_rows(store) == 0:
        if proc.poll() is not None:
            pytest.fail(f"the indexer ended before it could be interrupted: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no chunk was written within 120 s")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    _, _, records = snapshot(store)
    assert len(records) < N_ARTICLES, "the kill came too late to interrupt anything"

    # The interrupted store is usable as it is: retrieval shows only complete articles.
    partial = Pipeline(Settings(store=store, embedder="fake", chunk_size=64, chunk_overlap=16))
    if records:
        assert {p.source for p in partial.retrieve("Nordkorea Russland Waffen", k=20)} <= set(records)

    result = run_rag("--store", store, "--embedder", "fake", "index", "--json", folder, cwd=tmp_path, env=env)
    assert result.code == 0, result.err
    report = result.json()
    assert sorted(report["added"] + report["unchanged"]) == sorted(p.name for p in folder.iterdir())
    assert report["added"], "the second run must have finished what the first left"

    reference = tmp_path / "reference"
    Pipeline(Settings(store=reference, embedder="fake", chunk_size=64, chunk_overlap=16)).index([folder])

    chroma_ids, keyword_ids, records = snapshot(store)
    ref_chroma, ref_keyword, ref_records = snapshot(reference)
    assert len(ref_chroma) > 256, "the run should span several embedding groups"
    assert chroma_ids == ref_chroma
    assert keyword_ids == ref_keyword == ref_chroma
    assert len(set(chroma_ids)) == len(chroma_ids) and len(set(keyword_ids)) == len(keyword_ids)
    assert records == ref_records
    assert sum(records.values()) == len(chroma_ids)
