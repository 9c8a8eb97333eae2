"""Load on the running server (127.0.0.1 only, bounded in count and time).

1. ``rag serve`` as a real process (fake embedder, extractive generator): 20 concurrent
   conversations x 5 questions over the three ways of asking (POST /v1/ask, the same
   streamed, POST /v1/chat/completions). Zero errors, every answer complete. Throughput
   and p95 latency are printed (run with ``-s`` to see them), not asserted.
2. The local LLM (Qwen2.5-1.5B through llama.cpp) behind uvicorn in this process: 4
   concurrent conversations x 2 questions. Every answer complete, and generation
   serialized: the model object is wrapped to record when each completion starts and
   ends, and no two intervals overlap, while the requests themselves were in flight
   together (queued behind the generator's lock, not refused).
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PYTHON, clean_env, free_port
from model_support import packaged_model_cache
from server_support import sse_events

CONVERSATIONS = [
    [
        "Wann treffen sich Kim und Putin?",
        "Wo findet das Treffen statt?",
        "Womit reist Kim an?",
        "Was erhofft sich Russland davon?",
        "Und was bekommt Nordkorea?",
    ],
    [
        "Wie viele Raketen kann das U-Boot tragen?",
        "Wo soll es patrouillieren?",
        "Wie heißt es?",
        "Wer hat das U-Boot vorgestellt?",
        "Ist es einsatzbereit?",
    ],
    [
        "What weapons could North Korea supply to Russia?",
        "Why does Russia need them?",
        "How old are the shells?",
        "Who said that?",
        "What does Kim want in return?",
    ],
    [
        "Welche Rolle spielt China?",
        "Und die USA?",
        "Was sagt Südkorea dazu?",
        "Gibt es Sanktionen?",
        "Wie reagiert Japan?",
    ],
]
MODES = ("ask", "ask-stream", "chat-completions")
N_CONVERSATIONS = 20
TURNS = 5


# ----- the server as a process
class ServeProcess:
    """``python -m rag serve`` on a free port of 127.0.0.1 with its own store and cache."""

    def __init__(self, base: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = base / "serve.log"
        self._cmd = [
            PYTHON,
            "-m",
            "rag",
            "--store",
            str(base / "store"),
            "--embedder",
            "fake",
            "serve",
            "--port",
            str(self.port),
        ]
        self._env = clean_env(RAG_CACHE_DIR=str(base / "cache"), **env)
        self._cwd = base

    def __enter__(self) -> str:
        with self.log.open("w") as log:
            self._proc = subprocess.Popen(self._cmd, cwd=self._cwd, env=self._env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while True:
            assert self._proc.poll() is None, f"rag serve exited: {self.log.read_text()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"rag serve did not come up: {self.log.read_text()}"
            time.sleep(0.3)

    def __exit__(self, *exc: object) -> None:
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# ----- one request in each mode, checked for completeness


def check_answer(body: dict[str, Any], question: str) -> None:
    assert body["question"] == question
    assert body["answer"].strip()
    if body["abstained"]:
        assert not body["citations"]
    else:
        assert body["citations"], body
        for c in body["citations"]:
            assert 1 <= c["n"] <= len(body["passages"]) and f"[{c['n']}]" in body["answer"]


def ask_once(client: httpx.Client, mode: str, question: str, history: list[str]) -> dict[str, Any]:
    """One question; returns the checked answer object (the chat-completions one reshaped)."""
    if mode == "ask":
        response = client.post("/v1/ask", json={"question": question, "history": history})
        assert response.status_code == 200, response.text
        body = response.json()
    elif mode == "ask-stream":
        body, deltas = None, []
        with client.stream("POST", "/v1/ask", json={"question": question, "history": history, "stream": True}) as r:
            assert r.status_code == 200, r.read()
            for event, data in sse_events(r):
                assert event != "error", data
                if event == "delta":
                    deltas.append(json.loads(data)["text"])
                elif event == "answer":
                    body = json.loads(data)
        assert body is not None, "the stream ended without its answer event"
    else:
        messages = [m for h in history for m in ({"role": "user", "content": h}, {"role": "assistant", "content": "…"})]
        response = client.post(
            "/v1/chat/completions",
            json={"model": "rag-news", "messages": [*messages, {"role": "user", "content": question}]},
        )
        assert response.status_code == 200, response.text
        data = response.json()
        choice = data["choices"][0]
        assert choice["finish_reason"] == "stop" and choice["message"]["content"].strip()
        answer = choice["message"]["content"].split("\n\nSources:")[0]
        assert data["abstained"] or data["citations"], data
        assert all(f"[{c['n']}]" in answer for c in data["citations"])
        return data
    check_answer(body, question)
    return body


def run_conversations(
    url: str, conversations: list[tuple[str, list[str]]], timeout: float
) -> tuple[list[float], list[str], float]:
    """All conversations at once, one thread each; turns within one run in order.
    Returns (latencies, errors, wall seconds)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(conversations))

    def converse(index: int, mode: str, questions: list[str]) -> None:
        with httpx.Client(base_url=url, timeout=timeout) as client:
            start.wait()
            for turn, question in enumerate(questions):
                t = time.perf_counter()
                try:
                    ask_once(client, mode, question, questions[:turn])
                except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                    with lock:
                        errors.append(f"conversation {index} turn {turn} ({mode}): {type(exc).__name__}: {exc}")
                    continue
                with lock:
                    latencies.append(time.perf_counter() - t)

    wall = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(conversations)) as pool:
        for future in [pool.submit(converse, i, mode, qs) for i, (mode, qs) in enumerate(conversations)]:
            future.result()
    return latencies, errors, time.perf_counter() - wall


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


def report(label: str, latencies: list[float], wall: float) -> str:
    line = (
        f"{label}: {len(latencies)} answers in {wall:.1f} s = {len(latencies) / wall:.2f} answers/s; "
        f"latency median {statistics.median(latencies):.2f} s, p95 {p95(latencies):.2f} s, "
        f"max {max(latencies):.2f} s"
    )
    print(f"\n{line}")
    return line


@pytest.mark.slow
def test_twenty_conversations_of_five_questions_on_the_extractive_server(tmp_path: Path) -> None:
    conversations = [(MODES[i % len(MODES)], CONVERSATIONS[i % len(CONVERSATIONS)]) for i in range(N_CONVERSATIONS)]
    assert sum(len(qs) for _, qs in conversations) == N_CONVERSATIONS * TURNS
    with ServeProcess(tmp_path, RAG_GENERATOR="extractive") as url:
        httpx.post(f"{url}/v1/ask", json={"question": "Kim Putin"}, timeout=120)  # warm-up, not measured
        latencies, errors, wall = run_conversations(url, conversations, timeout=300)
        assert httpx.get(f"{url}/healthz", timeout=10).json()["articles"] == 5  # still serving
    assert errors == [], "\n".join(errors[:10])
    assert len(latencies) == N_CONVERSATIONS * TURNS
    line = report("extractive, 20 conversations x 5 questions", latencies, wall)
    (tmp_path / "load.txt").write_text(line)
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log
    assert "Serving on http://127.0.0.1:" in log  # no --host given: loopback only


# ----- the local LLM
class TimedLlama:
    """Wraps a llama_cpp.Llama: records the interval of every completion (for the lock test)."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self.spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def create_chat_completion(self, **kwargs: Any) -> Any:
        if kwargs.get("stream"):
            return self._stream(kwargs)
        start = time.monotonic()
        try:
            return self._llm.create_chat_completion(**kwargs)
        finally:
            self._record(start)

    def _stream(self, kwargs: dict[str, Any]) -> Iterator[Any]:
        start = time.monotonic()
        try:
            yield from self._llm.create_chat_completion(**kwargs)
        finally:
            self._record(start)

    def _record(self, start: float) -> None:
        with self._lock:
            self.spans.append((start, time.monotonic()))


class InFlight:
    """A generator wrapper (the protocol): counts how many generate() calls are in flight."""

    is_llm = True

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def generate(self, request: Any) -> Iterator[str]:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield from self.inner.generate(request)
        finally:
            with self._lock:
                self.active -= 1


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 12 generations of the 1.5B model on 2 cores; far longer when the machine is busy
def test_four_conversations_on_the_local_llm_are_queued(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from server_support import LiveServer

    from rag.answer.generators import LocalLlamaGenerator
    from rag.api import Pipeline
    from rag.server import create_app
    from rag.settings import Settings

    settings = Settings(
        store=tmp_path / "store",
        cache_dir=packaged_model_cache(tmp_path / "cache"),
        embedder="fake",
        generator="local",
        max_answer_tokens=64,
        top_k=3,
    )  # bounded: the point is the queue
    llm = LocalLlamaGenerator(settings)
    timed = TimedLlama(llm._llm)
    llm._llm = timed  # this generator's model calls are timed; the lock is the generator's own
    generator = InFlight(llm)
    pipeline = Pipeline(settings, generator=generator)
    pipeline.index()
    conversations = [(MODES[i % 2], CONVERSATIONS[i][:2]) for i in range(4)]  # /v1/ask, plain and streamed
    with LiveServer(create_app(pipeline, ui=False)) as url:
        latencies, errors, wall = run_conversations(url, conversations, timeout=1200)
    assert errors == [], "\n".join(errors)
    assert len(latencies) == 8
    spans = sorted(timed.spans)
    assert len(spans) >= 8  # 8 answers, plus the follow-up rewrites
    for (s1, e1), (s2, e2) in zip(spans, spans[1:], strict=False):
        assert s2 >= e1, f"two generations overlapped: {s1:.2f}-{e1:.2f} and {s2:.2f}-{e2:.2f}"
    assert generator.peak >= 2, "the requests never waited on each other: nothing was queued"
    busy = sum(e - s for s, e in spans)
    report("local LLM, 4 conversations x 2 questions", latencies, wall)
    print(
        f"generations: {len(spans)}, model busy {busy:.1f} s of {wall:.1f} s, peak in flight {generator.peak}, "
        f"longest generation {max(e - s for s, e in spans):.1f} s"
    )
