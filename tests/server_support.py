"""Shared by the HTTP tests: a real uvicorn server on 127.0.0.1 in a background thread,
and pipelines over a temp store with the fake embedder and the extractive generator."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from rag import Pipeline, Settings

QUESTION = "Wann treffen sich Kim und Putin?"
SUBMARINE_Q = "Wie viele Raketen kann das U-Boot tragen?"
SUBMARINE = "Das Gefährt könne bis zu zehn Raketen mit Nuklearsprengköpfen tragen und abfeuern."


def make_pipeline(base: Path, generator: Any = None, **settings: Any) -> Pipeline:
    """A pipeline over ``base/store`` (not indexed yet); ``generator`` injects a fake LLM."""
    options = {
        "store": base / "store",
        "cache_dir": base / "cache",
        "embedder": "fake",
        "generator": "extractive",
        **settings,
    }
    return Pipeline(Settings(**options), generator=generator)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``with LiveServer(app) as url:`` serves ``app`` at ``url`` until the block ends."""

    def __init__(self, app: Any, startup_timeout: float = 60.0) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn-{self.port}", daemon=True)
        self._timeout = startup_timeout
        self._app = app

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"uvicorn on port {self.port} exited during startup")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn on port {self.port} did not start within {self._timeout} s")
            time.sleep(0.02)
        pipeline = getattr(getattr(self._app, "state", None), "pipeline", None)
        while not getattr(pipeline, "ready", True):  # the warm-up create_app started
            if time.monotonic() > deadline:
                raise RuntimeError(f"the pipeline did not warm up within {self._timeout} s")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


def sse_events(response) -> list[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream response, data lines joined."""
    events, event, data = [], "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            events.append((event, "\n".join(data)))
            event, data = "message", []
    if data:
        events.append((event, "\n".join(data)))
    return events
