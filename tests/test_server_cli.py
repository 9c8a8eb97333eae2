"""`rag serve` as a real process, and the web chat mounted at / beside the API."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import PYTHON, assert_one_line_error, clean_env, free_port, run_rag

from rag.server import create_app
from tests.server_support import QUESTION, LiveServer, make_pipeline


def test_serve_help(cli) -> None:
    result = cli("serve", "--help")
    assert result.code == 0
    assert "--host" in result.out and "--port" in result.out
    assert "serve" in cli("--help").out


def test_chat_is_mounted_at_root_beside_the_api(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    pipeline = make_pipeline(tmp_path)
    pipeline.index()
    app = create_app(pipeline)  # ui=True: ui.build_app(pipeline) at /
    assert app.state.chat_ui, "ui.build_app was not found: the chat is not mounted"
    with LiveServer(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "gradio" in page.text.lower()
        assert c.get("/config").status_code == 200  # the chat's own routes answer under /
        assert c.get("/v1/models").json()["data"][0]["id"] == "rag-news"  # ... and ours still win
        assert c.post("/v1/ask", json={"question": QUESTION}).json()["citations"]
        assert "/v1/ask" in c.get("/openapi.json").json()["paths"]
        assert c.get("/healthz").json()["articles"] == 5


def test_rag_serve_process(tmp_path: Path) -> None:
    """Indexes the samples into an empty store, serves until SIGINT, exits 0."""
    port = free_port()
    env = clean_env(RAG_GENERATOR="extractive", RAG_CACHE_DIR=str(tmp_path / "cache"))
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "rag",
                "--store",
                str(tmp_path / "store"),
                "--embedder",
                "fake",
                "serve",
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"rag serve exited with {proc.returncode}: {log_path.read_text()}"
            try:
                health = httpx.get(f"{url}/healthz", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"rag serve did not come up: {log_path.read_text()}"
            time.sleep(0.3)
        assert health.json() == {
            "status": "ok",
            "ready": True,
            "articles": 5,
            "embedder": "fake",
            "generator": "extractive",
        }
        answer = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60).json()
        assert answer["citations"] and answer["generator"] == "extractive"
        assert httpx.get(f"{url}/openapi.json", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    output = log_path.read_text()
    assert code == 0, output
    assert f"Serving on http://127.0.0.1:{port}" in output and "indexing the sample articles" in output
    assert "Traceback" not in output


def test_rag_serve_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_rag(
            "--store", tmp_path / "store", "--embedder", "fake", "serve", "--port", port, cwd=tmp_path, timeout=120
        )
    assert_one_line_error(result, 2, f"Cannot listen on 127.0.0.1:{port}", "--port")


def test_rag_serve_refuses_a_bad_port(cli, tmp_path: Path) -> None:
    result = cli("--store", tmp_path / "store", "--embedder", "fake", "serve", "--port", "70000")
    assert result.code == 2 and "out of range" in result.err
    assert cli("serve", "--port", "zero").code == 2
