"""The HTTP API (rag.server) on a real uvicorn server on 127.0.0.1, called with httpx.

The store and retrieval are real (Chroma in a temp folder, BM25, the fake embedder); the
answers come from the real extractive generator, or a scripted LLM where a test needs to
say what the model wrote. The OpenAI-compatible endpoint is in test_server_openai.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag import Pipeline, Settings
from rag.server import create_app
from tests.fakes import ScriptedGenerator
from tests.server_support import QUESTION, SUBMARINE, SUBMARINE_Q, LiveServer, make_pipeline
from tests.server_support import sse_events as raw_sse_events

ELEPHANT = (
    "Neuer Elefant im Leipziger Zoo\n\nDer Zoo Leipzig hat einen jungen Elefanten bekommen. Der Elefant heißt "
    "Bruno und wiegt schon zwei Tonnen. Die Pfleger füttern Bruno mit Heu, Äpfeln und Karotten.\n"
)
ANSWER_KEYS = {
    "question",
    "answer",
    "abstained",
    "citations",
    "passages",
    "timings",
    "standalone_question",
    "language",
    "generator",
    "confidence",
    "disagreement",
    "signals",
    "period",
}
PASSAGE_KEYS = {"id", "source", "title", "text", "start", "end", "score", "meta", "group", "story", "also_in"}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Pipeline]]:
    """One server over the indexed sample articles, for the tests that change nothing."""
    pipeline = make_pipeline(tmp_path_factory.mktemp("server"))
    pipeline.index()
    with LiveServer(create_app(pipeline, ui=False)) as url:
        yield url, pipeline


@pytest.fixture
def client(shared: tuple[str, Pipeline]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared[0], timeout=60) as c:
        yield c


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[httpx.Client, Pipeline]]:
    """A server of its own over a freshly indexed store, for tests that upload or delete."""
    pipeline = make_pipeline(tmp_path, max_upload_mb=0.01)
    pipeline.index()
    with LiveServer(create_app(pipeline, ui=False)) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c, pipeline


def sse_events(response: httpx.Response) -> list[tuple[str, Any]]:
    """(event, parsed JSON data) pairs of a text/event-stream response."""
    return [(event, json.loads(data)) for event, data in raw_sse_events(response)]


def assert_error(response: httpx.Response, status: int, *needles: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    for needle in needles:
        assert needle in detail, detail


# ----- service
def test_healthz_and_root(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "ready": True, "articles": 5, "embedder": "fake", "generator": "extractive"}
    assert client.get("/").json()["openapi"] == "/openapi.json"  # no chat mounted in these tests


def test_openapi_lists_paths_and_bodies(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) >= {
        "/v1/retrieve",
        "/v1/ask",
        "/v1/articles",
        "/v1/articles/{source}",
        "/v1/chat/completions",
        "/v1/models",
        "/healthz",
    }
    assert set(paths["/v1/articles"]) == {"get", "post"}
    assert set(paths["/v1/articles/{source}"]) == {"get", "delete"}
    assert "multipart/form-data" in paths["/v1/articles"]["post"]["requestBody"]["content"]
    assert "text/event-stream" in paths["/v1/ask"]["post"]["responses"]["200"]["content"]
    components = schema["components"]["schemas"]
    assert {
        "RetrieveRequest",
        "RetrieveResponse",
        "AskRequest",
        "AnswerOut",
        "CitationOut",
        "PassageOut",
        "ArticleList",
        "IndexReportOut",
        "ChatCompletionRequest",
        "ChatCompletion",
        "ModelList",
    } <= set(components)
    assert set(components["AnswerOut"]["properties"]) == ANSWER_KEYS
    assert client.get("/docs").status_code == 200


# ----- retrieve
def test_retrieve(client: httpx.Client) -> None:
    r = client.post("/v1/retrieve", json={"question": SUBMARINE_Q, "k": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["question"] == SUBMARINE_Q and set(body["timings"]) == {"retrieve_s"}
    assert len(body["passages"]) == 2
    top = body["passages"][0]
    assert set(top) == PASSAGE_KEYS and "Raketen" in top["text"]
    article = client.get(f"/v1/articles/{top['source']}").json()  # offsets point into the article's text
    assert article["text"][top["start"] : top["end"]] == top["text"]
    assert len(client.post("/v1/retrieve", json={"question": SUBMARINE_Q}).json()["passages"]) == 5  # top_k


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"question": ""}, 400, "The question is empty"),
        ({"question": "   \n"}, 400, "The question is empty"),
        ({"question": "?!"}, 400, "no words"),
        ({}, 422, "question"),
        ({"question": "Kim?", "k": 0}, 422, "k"),
        ({"question": "Kim?", "top_k": 3}, 422, "top_k"),
    ],
)
def test_retrieve_bad_requests(client: httpx.Client, body: dict, status: int, needle: str) -> None:
    r = client.post("/v1/retrieve", json=body)
    assert r.status_code == status, r.text
    assert needle in json.dumps(r.json()["detail"])


# ----- ask
def test_ask_is_the_cli_json_object(client: httpx.Client, shared: tuple[str, Pipeline]) -> None:
    r = client.post("/v1/ask", json={"question": QUESTION})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == ANSWER_KEYS
    expected = shared[1].ask(QUESTION).to_json()
    assert {k: v for k, v in body.items() if k != "timings"} == {k: v for k, v in expected.items() if k != "timings"}
    assert not body["abstained"] and body["citations"] and body["generator"] == "extractive"
    for c in body["citations"]:
        assert f"[{c['n']}]" in body["answer"]
        article = client.get(f"/v1/articles/{c['source']}").json()
        assert article["text"][c["start"] : c["end"]] == c["quote"]
        assert body["passages"][c["n"] - 1]["id"] == c["passage_id"]


def test_ask_streams_pieces_then_the_answer(client: httpx.Client) -> None:
    with client.stream("POST", "/v1/ask", json={"question": QUESTION, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    kinds = [e for e, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"delta"} and len(kinds) >= 2
    final = events[-1][1]
    assert set(final) == ANSWER_KEYS and final["citations"]
    streamed = "".join(d["text"] for _, d in events[:-1])
    assert streamed.strip() == final["answer"].strip()  # the extractive draft passes the check unchanged


def test_ask_follow_up_uses_history(client: httpx.Client) -> None:
    body = client.post("/v1/ask", json={"question": "Und wo?", "history": [QUESTION]}).json()
    assert body["question"] == "Und wo?"
    assert "Putin" in body["standalone_question"]  # rewritten with the earlier turn


@pytest.mark.parametrize("stream", [False, True])
def test_ask_bad_requests(client: httpx.Client, stream: bool) -> None:
    assert_error(client.post("/v1/ask", json={"question": " ", "stream": stream}), 400, "The question is empty")
    r = client.post("/v1/ask", json={"question": QUESTION, "generator": "gpt-9", "stream": stream})
    assert r.status_code == 422 and "generator" in r.text
    assert client.post("/v1/ask", json={"question": QUESTION, "history": "nope"}).status_code == 422


def test_empty_store_is_409(tmp_path: Path) -> None:
    pipeline = make_pipeline(tmp_path)
    with LiveServer(create_app(pipeline, ui=False)) as url, httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/healthz").json()["articles"] == 0
        assert c.get("/v1/articles").json() == {"articles": []}
        assert_error(c.post("/v1/retrieve", json={"question": QUESTION}), 409, "rag index")
        assert_error(c.post("/v1/ask", json={"question": QUESTION, "stream": True}), 409, "No articles")


def test_streamed_draft_is_replaced_by_the_checked_answer(tmp_path: Path) -> None:
    """The final event carries the checked answer: an unsupported sentence of the draft is gone."""

    def reply(request) -> str:
        prompt = request.messages[-1]["content"]
        block = next(b for b in prompt.split("</auszug>") if "zehn Raketen" in b)
        n = int(block.split('nr="')[1].split('"')[0])
        return f"{SUBMARINE} [{n}] Der Mond besteht aus grünem Käse [{n}]."

    pipeline = make_pipeline(tmp_path, generator=ScriptedGenerator(reply))
    pipeline.index()
    with LiveServer(create_app(pipeline, ui=False)) as url, httpx.Client(base_url=url, timeout=60) as c:
        with c.stream("POST", "/v1/ask", json={"question": SUBMARINE_Q, "stream": True}) as r:
            events = sse_events(r)
    draft = "".join(d["text"] for e, d in events if e == "delta")
    final = events[-1][1]
    assert "Käse" in draft and len([e for e, _ in events if e == "delta"]) > 5  # streamed in small pieces
    assert "zehn Raketen" in final["answer"] and "Käse" not in final["answer"]
    assert final["generator"] == "scripted" and not final["abstained"]


# ----- articles
def test_list_articles(client: httpx.Client, shared: tuple[str, Pipeline]) -> None:
    articles = client.get("/v1/articles").json()["articles"]
    assert [a["source"] for a in articles] == [a.source for a in shared[1].sources()]
    assert len(articles) == 5
    for a in articles:
        assert set(a) == {"source", "title", "chunks", "chars", "meta"} and a["chunks"] >= 1 and a["title"]


def test_get_unknown_article_is_404(client: httpx.Client) -> None:
    assert_error(client.get("/v1/articles/nope.txt"), 404, "nope.txt", "rag sources")
    assert_error(client.delete("/v1/articles/no/such/thing.txt"), 404, "no/such/thing.txt")


def test_upload_then_retrieve_then_delete(fresh: tuple[httpx.Client, Pipeline]) -> None:
    c, _ = fresh
    question = "Wie heißt der junge Elefant im Leipziger Zoo?"
    r = c.post("/v1/articles", files={"file": ("../../zoo/elefant.txt", ELEPHANT.encode(), "text/plain")})
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["added"] == ["elefant.txt"] and report["chunks"] >= 1 and report["failed"] == []
    top = c.post("/v1/retrieve", json={"question": question, "k": 1}).json()["passages"][0]
    assert top["source"] == "elefant.txt" and "Bruno" in top["text"]
    assert c.get("/v1/articles/elefant.txt").json()["title"] == "Neuer Elefant im Leipziger Zoo"
    answer = c.post("/v1/ask", json={"question": question}).json()
    assert "Elefant" in answer["answer"] and answer["citations"][0]["source"] == "elefant.txt"
    again = c.post("/v1/articles", files={"file": ("elefant.txt", ELEPHANT.encode(), "text/plain")})
    assert again.status_code == 200 and again.json()["unchanged"] == ["elefant.txt"]
    assert len(c.get("/v1/articles").json()["articles"]) == 6

    r = c.delete("/v1/articles/elefant.txt")
    assert r.status_code == 200 and r.json() == {"removed": "elefant.txt"}
    assert "elefant.txt" not in [a["source"] for a in c.get("/v1/articles").json()["articles"]]
    assert all(
        p["source"] != "elefant.txt" for p in c.post("/v1/retrieve", json={"question": question}).json()["passages"]
    )
    assert_error(c.delete("/v1/articles/elefant.txt"), 404, "elefant.txt")


UPLOAD_REFUSALS = [
    ("report.pdf", b"%PDF-1.4 binary", "Unsupported file type .pdf"),
    ("noext", b"Text ohne Endung", "Unsupported file type (none)"),
    ("big.txt", b"Wort " * 4000, "larger than the upload limit"),  # the fixture's limit is 0.01 MB
    ("...", b"Text", "no usable name"),
    ("leer.txt", b"   \n  ", "leer.txt"),
]


def test_upload_refusals(fresh: tuple[httpx.Client, Pipeline]) -> None:
    c, _ = fresh
    for name, data, needle in UPLOAD_REFUSALS:
        assert_error(c.post("/v1/articles", files={"file": (name, data, "application/octet-stream")}), 400, needle)
    assert len(c.get("/v1/articles").json()["articles"]) == 5


def test_upload_without_file_is_422(fresh: tuple[httpx.Client, Pipeline]) -> None:
    c, _ = fresh
    r = c.post("/v1/articles", data={"other": "x"})
    assert r.status_code == 422 and "file" in r.text


def test_delete_source_with_slashes(fresh: tuple[httpx.Client, Pipeline], tmp_path: Path) -> None:
    c, pipeline = fresh
    folder = tmp_path / "articles"
    (folder / "zoo" / "2024").mkdir(parents=True)
    (folder / "zoo" / "2024" / "elefant.txt").write_text(ELEPHANT, encoding="utf-8")
    assert pipeline.index([folder]).added == ["zoo/2024/elefant.txt"]
    assert c.get("/v1/articles/zoo/2024/elefant.txt").json()["source"] == "zoo/2024/elefant.txt"
    r = c.delete("/v1/articles/zoo/2024/elefant.txt")
    assert r.status_code == 200 and r.json() == {"removed": "zoo/2024/elefant.txt"}
    assert_error(c.get("/v1/articles/zoo%2F2024%2Felefant.txt"), 404, "zoo/2024/elefant.txt")  # escaped slashes too


# ----- login
def test_login_protects_the_api_when_configured(tmp_path: Path) -> None:
    pipeline = make_pipeline(tmp_path, auth_user="ada", auth_password="s3cret")
    with LiveServer(create_app(pipeline, ui=False)) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.get("/v1/articles")
        assert r.status_code == 401 and "login" in r.json()["detail"]
        assert r.headers["www-authenticate"].startswith("Basic")
        assert c.get("/v1/articles", auth=("ada", "wrong")).status_code == 401
        assert c.get("/v1/articles", auth=("ada", "s3cret")).status_code == 200
        assert c.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/v1/models", headers={"Authorization": "Bearer nope"}).json()["error"]["message"]
        assert c.get("/healthz").status_code == 200  # liveness stays open


class SlowGenerator:
    """An 'LLM' that writes slowly under a lock, like the local one; records when its stream is closed."""

    is_llm = True
    name = "slow"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def generate(self, request) -> Iterator[str]:
        with self.lock:
            try:
                for i in range(400):
                    time.sleep(0.05)
                    yield f"Wort{i} "
            finally:
                self.closed.set()


def test_client_leaving_a_stream_stops_generation(tmp_path: Path) -> None:
    """A suspended generator must not keep the LLM lock after its client went away."""
    generator = SlowGenerator()
    pipeline = make_pipeline(tmp_path, generator=generator)
    pipeline.index()
    with LiveServer(create_app(pipeline, ui=False)) as url, httpx.Client(base_url=url, timeout=60) as c:
        with c.stream("POST", "/v1/ask", json={"question": SUBMARINE_Q, "stream": True}) as r:
            first = next(r.iter_lines())
            assert first == "event: delta"
        assert generator.closed.wait(10), "the answer stream was not closed after the client left"
        assert generator.lock.acquire(timeout=2)
        generator.lock.release()


def test_healthz_says_ready_only_after_the_warm_up(tmp_path: Path) -> None:
    """503 "warming" while the start-up warm-up runs (the first answers would queue behind
    it), 200 "ok" once it is done."""
    import threading

    from index.embed import FakeEmbedder

    release = threading.Event()

    class HeldEmbedder(FakeEmbedder):  # the warm-up's first embedding waits until released
        def embed(self, texts, kind):
            if texts == ["warm"]:
                release.wait(30)
            return super().embed(texts, kind)

    settings = Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache", embedder="fake", generator="extractive")
    pipeline = Pipeline(settings, embedder=HeldEmbedder())
    pipeline.index()
    app = create_app(pipeline, ui=False)
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        r = c.get("/healthz")
        assert r.status_code == 503 and r.json()["status"] == "warming" and r.json()["ready"] is False
        release.set()
        pipeline.warm().join(30)
        r = c.get("/healthz")
        assert r.status_code == 200 and r.json()["ready"] is True
    pipeline.close()


def test_warm_up_embeds_the_sentences_the_first_answers_need(tmp_path: Path) -> None:
    """After start-up no answer waits for sentence embeddings of the (small) store: the
    warm-up filled the cache every answerer of the pipeline shares (issue 16: the first
    burst after start-up was 4.5x slower than a warm one at p95)."""
    from conftest import CountingEmbedder

    from index.embed import FakeEmbedder

    embedder = CountingEmbedder(FakeEmbedder())
    pipeline = Pipeline(
        Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache", embedder="fake", generator="extractive"),
        embedder=embedder,
    )
    pipeline.index()
    pipeline.warm().join(60)
    assert pipeline.ready
    embedder.passages.clear()
    for question in (QUESTION, "Wer begleitet Kim Jong-un?", "Welche Waffen könnte Nordkorea liefern?"):
        pipeline.ask(question)
        pipeline.ask(question, generator="extractive", top_k=3)  # a per-request answerer shares the cache
    assert embedder.passages == []
    pipeline.close()
