"""Shared by the MCP and LangChain tests: a `chroma run` server the test can stop halfway
(the store failing under a running edge), and `rag mcp --http` as a real process."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PYTHON, VENV_BIN, clean_env, free_port, stop_process, wait_until_up


class ChromaProcess:
    """``with ChromaProcess(tmp) as chroma:`` runs ``chroma run`` on a free port; ``chroma.stop()``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen | None = None
        self._log = folder / "chroma-run.log"

    def __enter__(self) -> ChromaProcess:
        chroma = VENV_BIN / "chroma"
        if not chroma.exists():
            pytest.skip(f"{chroma} not found (chromadb's server CLI)")
        with self._log.open("w") as log:
            self._proc = subprocess.Popen(
                [
                    str(chroma),
                    "run",
                    "--path",
                    str(self.folder / "chroma-data"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env(),
            )
        wait_until_up(self._proc, f"{self.url}/api/v2/heartbeat", self._log, "chroma run", 60)
        return self

    def stop(self) -> None:
        stop_process(self._proc)

    def __exit__(self, *exc: object) -> None:
        self.stop()


class McpHttpProcess:
    """``rag ARGS mcp --http --port P`` as a real process; the URL of its endpoint once it listens."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float = 60) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self._argv = [PYTHON, "-m", "rag", *args, "mcp", "--http", "--port", str(self.port)]
        self._cwd, self._env, self._timeout = cwd, clean_env(**env), timeout
        self._log = cwd / f"rag-mcp-{self.port}.log"
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> McpHttpProcess:
        with self._log.open("w") as log:
            self._proc = subprocess.Popen(
                self._argv, cwd=self._cwd, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self._timeout
        while True:
            if self._proc.poll() is not None:
                pytest.fail(f"rag mcp --http exited with {self._proc.returncode}: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rag mcp --http did not listen on {self.port} within {self._timeout:g} s")
            time.sleep(0.1)

    def log(self) -> str:
        return self._log.read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.terminate()  # uvicorn shuts down on SIGTERM; the CLI then closes the pipeline
        try:
            self.returncode = self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            raise
