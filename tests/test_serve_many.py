"""Two `rag serve` processes over one `chroma run` (issue 15, part 4), all real processes on
127.0.0.1, called over HTTP: index through one, ask through the other, update and remove
through the first.

What must hold (docs/deploy.md, "Several servers over one Chroma server"):
- every response of the second server is one consistent state of the store: no passage twice,
  never passages of two versions of one article, and its view never moves backwards;
- a question that reaches it once the staleness bound has passed since a write returned sees
  that write, in retrieval and in answers;
- its keyword index (read from its own file, which only it writes) then holds exactly the
  chunks Chroma holds, and it ranks as the writing server does (same passage, same fused score);
- the store holds exactly the chunks one process indexing the same texts would have made, though
  both servers indexed the sample articles at once when they started on the empty store.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import PYTHON, clean_env, free_port
from edge_support import ChromaProcess

from index import ChromaStore, open_client
from index.records import CONFIRMED
from rag.api import Pipeline
from rag.settings import Settings, index_fingerprint

pytestmark = pytest.mark.slow  # chroma run and two servers with the chat mounted: ~30-60 s here

REFRESH = 2.0  # RAG_REFRESH_SECONDS of both servers
QUESTION = "Wie heißt der junge Elefant im Leipziger Zoo und wie viel wiegt er?"
ASK = "Wie viel wiegt der Elefant Bruno?"
SOURCE = "elefant.txt"
V1 = (
    "Neuer Elefant im Leipziger Zoo\n\nDer Zoo Leipzig hat einen jungen Elefanten bekommen. Der Elefant heißt "
    "Bruno und wiegt schon zwei Tonnen. Die Pfleger füttern Bruno mit Heu, Äpfeln und Karotten.\n"
)
V2 = V1.replace("wiegt schon zwei Tonnen", "wiegt inzwischen drei Tonnen").replace(
    "Äpfeln und Karotten", "Bananen und Melonen"
)


class ServeProcess:
    """``rag --chroma-url URL serve --port P`` with its own cache_dir, until stopped with SIGINT."""

    def __init__(self, chroma_url: str, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder.mkdir(parents=True)
        self.cache = folder / "cache"
        self.log_path = folder / "serve.log"
        env = clean_env(RAG_GENERATOR="extractive", RAG_CACHE_DIR=str(self.cache), RAG_REFRESH_SECONDS=str(REFRESH))
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "rag",
                    "--chroma-url",
                    chroma_url,
                    "--embedder",
                    "fake",
                    "serve",
                    "--port",
                    str(self.port),
                ],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"rag serve exited with {self.proc.returncode}: {self.log()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"rag serve did not become ready: {self.log()}"
            time.sleep(0.3)

    def keyword_ids(self) -> set[str]:
        """The chunk ids in this server's keyword index, as it has committed them to its own file."""
        (path,) = (self.cache / "keyword").glob("*.sqlite")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return {r[0] for r in db.execute("SELECT id FROM docs")}
        finally:
            db.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode


@dataclass
class Seen:
    """One retrieval response of the reading server, and when its request was sent."""

    sent: float
    passages: list[dict]


class Watcher:
    """Asks the reading server the same question over and over, in a thread, and keeps every response."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[Seen] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watcher")

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                r = client.post("/v1/retrieve", json={"question": QUESTION, "k": 5})
                if r.status_code == 200:
                    self.seen.append(Seen(sent, r.json()["passages"]))
                else:
                    self.errors.append(f"{r.status_code}: {r.text[:300]}")
                self._stop.wait(0.15)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


def version_of(passages: list[dict], texts: dict[int, str]) -> int:
    """Which version of SOURCE a response shows (0: none); every passage of it must be cut from
    that one version's text, and no passage may come twice."""
    ids = [p["id"] for p in passages]
    assert len(ids) == len(set(ids)), f"a passage twice: {ids}"
    spans = [(p["source"], p["start"], p["end"]) for p in passages]
    assert len(spans) == len(set(spans)), f"the same span twice: {spans}"
    mine = [p for p in passages if p["source"] == SOURCE]
    if not mine:
        return 0
    versions = {v for v, text in texts.items() if all(text[p["start"] : p["end"]] == p["text"] for p in mine)}
    assert len(versions) == 1, f"passages of {SOURCE} from versions {versions or 'none'}: {mine}"
    return versions.pop()


def staleness_bound(store: ChromaStore) -> float:
    """The bound the servers apply: refresh_seconds, or 40x one read of every record if longer
    (index/records.py), measured from here on the same server."""
    costs = []
    for _ in range(5):
        started = time.monotonic()
        store.articles()
        costs.append(time.monotonic() - started)
    return max(REFRESH, 40 * max(costs))


def test_two_servers_over_one_chroma_server(tmp_path: Path) -> None:
    with ChromaProcess(tmp_path) as chroma:
        writer, reader = ServeProcess(chroma.url, tmp_path / "a"), ServeProcess(chroma.url, tmp_path / "b")
        try:
            writer.wait_ready()
            reader.wait_ready()
            run(chroma.url, writer, reader, tmp_path)
        finally:
            codes = {"writer": writer.stop(), "reader": reader.stop()}
        assert codes == {"writer": 0, "reader": 0}, (writer.log(), reader.log())
        for server in (writer, reader):
            assert "Traceback" not in server.log(), server.log()


def run(chroma_url: str, writer: ServeProcess, reader: ServeProcess, tmp_path: Path) -> None:
    settings = Settings(chroma_url=chroma_url, cache_dir=tmp_path / "probe", embedder="fake")
    store = ChromaStore(open_client("", chroma_url), index_fingerprint(settings), chroma_url)
    # What one process makes of the same texts, in a folder of its own.
    reference = Pipeline(Settings(store=tmp_path / "reference", cache_dir=tmp_path / "ref-cache", embedder="fake"))
    reference.index()
    a, b = httpx.Client(base_url=writer.url, timeout=60), httpx.Client(base_url=reader.url, timeout=60)

    # Both started on the empty store and both indexed the sample articles: still one copy of each.
    assert len(a.get("/v1/articles").json()["articles"]) == 5
    assert store.chunk_ids() == reference.store.chunk_ids() and store.count() == reference.store.count()
    assert reader.keyword_ids() == writer.keyword_ids() == store.chunk_ids()

    bound = staleness_bound(store)
    texts: dict[int, str] = {}
    writes: list[tuple[int, float, float]] = []  # (version shown from then on, write sent, write returned)
    keyword_lags = []
    with Watcher(reader.url) as watcher:
        time.sleep(1)
        for version, body in ((1, V1), (2, V2), (0, None)):
            begun = time.monotonic()
            if body is None:
                r = a.delete(f"/v1/articles/{SOURCE}")
                assert r.status_code == 200, r.text
                reference.remove(SOURCE)
            else:
                r = a.post("/v1/articles", files={"file": (SOURCE, body.encode(), "text/plain")})
                assert r.status_code == 201, r.text
                assert r.json()["added" if version == 1 else "updated"] == [SOURCE]
                reference.index_upload(SOURCE, body.encode())
            returned = time.monotonic()
            writes.append((version, begun, returned))
            if body is not None:
                texts[version] = a.get(f"/v1/articles/{SOURCE}").json()["text"]
            keyword_lags.append(wait_for_keyword(reader, store, returned, bound))
            time.sleep(max(0.0, returned + bound - time.monotonic()))
            check_caught_up(a, b, reader, store, reference, version, texts.get(version, ""))
        time.sleep(1)

    assert not watcher.errors, watcher.errors[:3]
    assert len(watcher.seen) > 20
    shown = [(s.sent, version_of(s.passages, texts)) for s in watcher.seen]
    # Never backwards: once a response showed a state, no later response shows an earlier one.
    order = [v for _, v in shown]
    phases = [0 if v == 0 and i < first_index(order, 1) else {0: 3, 1: 1, 2: 2}[v] for i, v in enumerate(order)]
    assert phases == sorted(phases), order
    # Retrieval shows each write once it returned (CONFIRMED s at most: the reader reads the records of
    # articles whose chunks its view does not admit), up to the next write: anything else only during a write.
    for i, ((version, _, returned), following) in enumerate(
        zip(writes, [*writes[1:], (None, float("inf"), None)], strict=True)
    ):
        after = [v for sent, v in shown if returned + CONFIRMED <= sent < following[1]]
        assert after and set(after) == {version}, (version, after)
        first = min(sent for sent, v in shown if sent >= writes[i][1] and v == version)
        print(
            f"version {version}: shown by the reader {first - returned:+.2f} s after the write returned; "
            f"its keyword index caught up {keyword_lags[i]:.2f} s after (bound {bound:.2f} s)"
        )


def wait_for_keyword(reader: ServeProcess, store: ChromaStore, since: float, bound: float) -> float:
    """Seconds until the reader's keyword index holds exactly Chroma's chunks (the bound, plus the sync itself)."""
    expected = store.chunk_ids()
    while reader.keyword_ids() != expected:
        assert time.monotonic() - since < bound + 1.0, "the reader's keyword index did not catch up within the bound"
        time.sleep(0.05)
    return time.monotonic() - since


def first_index(order: list[int], value: int) -> int:
    return order.index(value) if value in order else len(order)


def check_caught_up(
    a: httpx.Client,
    b: httpx.Client,
    reader: ServeProcess,
    store: ChromaStore,
    reference: Pipeline,
    version: int,
    text: str,
) -> None:
    """What the reading server must show once the bound has passed since the last write."""
    assert store.chunk_ids() == reference.store.chunk_ids()  # no stale chunk of an older version left
    mine = b.post("/v1/retrieve", json={"question": QUESTION, "k": 5}).json()["passages"]
    theirs = a.post("/v1/retrieve", json={"question": QUESTION, "k": 5}).json()["passages"]
    assert version_of(mine, {version: text} if version else {}) == version
    # The keyword index caught up: the same best passage with the same fused (dense + BM25) score.
    assert (mine[0]["id"], mine[0]["score"]) == (theirs[0]["id"], theirs[0]["score"])
    assert reader.keyword_ids() == store.chunk_ids()
    sources = [x["source"] for x in b.get("/v1/articles").json()["articles"]]
    answer = b.post("/v1/ask", json={"question": ASK}).json()
    if version:
        assert SOURCE in sources and mine[0]["source"] == SOURCE
        weight = {1: "zwei Tonnen", 2: "drei Tonnen"}[version]
        cited = [c for c in answer["citations"] if c["source"] == SOURCE]
        assert not answer["abstained"] and weight in answer["answer"], answer
        assert cited and all(text[c["start"] : c["end"]] == c["quote"] for c in cited), answer
    else:
        assert SOURCE not in sources
        assert b.get(f"/v1/articles/{SOURCE}").status_code == 404
        assert all(c["source"] != SOURCE for c in answer["citations"]) and "Tonnen" not in answer["answer"]
