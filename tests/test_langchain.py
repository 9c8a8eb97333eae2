"""The LangChain retriever (rag.langchain) with the real langchain-core over a real store
(Chroma in a temp folder, BM25, the fake embedder): sync and async, inside a runnable chain,
with LangChain's own callbacks, news metadata and filters (over the news fixture corpus, set up
so that post-filtering would starve k), and our errors with the messages every edge gives."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from conftest import PYTHON, clean_env

pytest.importorskip("langchain_core")

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda

from rag import BadInput, EmptyStore, Pipeline, Settings, StoreUnavailable
from rag.api import check_question
from rag.filters import make_filters
from rag.langchain import NewsRetriever, passage_from_document
from tests.edge_support import ChromaProcess
from tests.news_corpus import BRIDGE, EXPECTED, NEWS_DIR

SUBMARINE_Q = "Wie viele Raketen mit Nuklearsprengköpfen kann das Atom-U-Boot tragen?"
SUBMARINE_SOURCE = "004_7f32bc9d79f56e77.txt"
BRIDGE_Q = "Wie lang ist die Umleitung wegen der gesperrten Havelbrücke in Rathenow?"
POOL_Q = "Wie viel kostet das neue Hallenbad in Cottbus?"
ARTICLE_KEYS = {"outlet", "url", "author", "published", "updated"}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    base = tmp_path_factory.mktemp("langchain")
    pipe = Pipeline(Settings(store=base / "store", cache_dir=base / "cache", embedder="fake", generator="extractive"))
    pipe.index()
    yield pipe
    pipe.close()


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The news fixture corpus; small chunks and as few candidates per retriever as k (5)."""
    base = tmp_path_factory.mktemp("langchain-news")
    pipe = Pipeline(
        Settings(
            store=base / "store",
            cache_dir=base / "cache",
            embedder="fake",
            generator="extractive",
            chunk_size=40,
            chunk_overlap=0,
            candidates=5,
        )
    )
    assert sorted(pipe.index([NEWS_DIR]).added) == sorted(EXPECTED)
    yield pipe
    pipe.close()


def assert_points_into_articles(pipeline: Pipeline, docs: list[Document]) -> None:
    for doc in docs:
        article = pipeline.article(doc.metadata["source"])
        assert doc.page_content == article.text[doc.metadata["start"] : doc.metadata["end"]]
        assert doc.metadata["title"] == article.title


def test_invoke_returns_documents_with_our_offsets_and_scores(pipeline: Pipeline) -> None:
    docs = NewsRetriever(pipeline=pipeline, k=3).invoke(SUBMARINE_Q)
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    assert docs[0].metadata["source"] == SUBMARINE_SOURCE and "zehn Raketen" in docs[0].page_content
    assert set(docs[0].metadata) == {"source", "title", "start", "end", "score"} | ARTICLE_KEYS
    assert_points_into_articles(pipeline, docs)
    passages = pipeline.retrieve(SUBMARINE_Q, 3)  # the same ranking as the product's own retriever
    assert [d.id for d in docs] == [p.id for p in passages]
    assert [d.metadata["score"] for d in docs] == [p.score for p in passages]
    assert [d.metadata["score"] for d in docs] == sorted((d.metadata["score"] for d in docs), reverse=True)
    back = passage_from_document(docs[0])
    fields = ("id", "source", "title", "start", "end", "text", "score", "meta")  # what a Document carries
    assert [getattr(back, f) for f in fields] == [getattr(passages[0], f) for f in fields]
    denk = [
        d
        for d in NewsRetriever(pipeline=pipeline, k=3, filters={"source": "002_982e29be4fc97f92.txt"}).invoke(
            SUBMARINE_Q
        )
    ]
    assert len(denk) == 3 and {d.metadata["author"] for d in denk} == {"Christina Denk"}
    assert {d.metadata["outlet"] for d in denk} == {""}  # the article does not say: nothing is guessed


def test_default_k_is_the_top_k_setting(pipeline: Pipeline) -> None:
    assert len(NewsRetriever(pipeline=pipeline).invoke("Wann treffen sich Kim und Putin?")) == pipeline.settings.top_k


def test_async_matches_sync_and_runs_concurrently(pipeline: Pipeline) -> None:
    retriever = NewsRetriever(pipeline=pipeline, k=4)
    questions = [SUBMARINE_Q, "Wann treffen sich Kim und Putin?", "Munition für den Krieg gegen die Ukraine"]

    async def both() -> tuple[list[Document], list[list[Document]]]:
        one = await retriever.ainvoke(SUBMARINE_Q)
        many = await asyncio.gather(*(retriever.ainvoke(q) for q in questions))
        return one, list(many)

    one, many = asyncio.run(both())
    assert [d.id for d in one] == [d.id for d in retriever.invoke(SUBMARINE_Q)]
    assert [[d.id for d in docs] for docs in many] == [[d.id for d in retriever.invoke(q)] for q in questions]
    assert [[d.id for d in docs] for docs in retriever.batch(questions)] == [[d.id for d in docs] for docs in many]
    for docs in many:
        assert_points_into_articles(pipeline, docs)


def test_in_a_runnable_chain_with_callbacks(pipeline: Pipeline) -> None:
    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.events: list[tuple[str, Any]] = []

        def on_retriever_start(self, serialized: dict, query: str, *, run_id: UUID, **kwargs: Any) -> None:
            self.events.append(("start", query))

        def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
            self.events.append(("end", [d.metadata["source"] for d in documents]))

        def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
            self.events.append(("error", type(error).__name__))

    def context(docs: list[Document]) -> str:
        return "\n".join(
            f"[{n}] {d.metadata['source']}:{d.metadata['start']}-{d.metadata['end']}"
            for n, d in enumerate(docs, start=1)
        )

    recorder = Recorder()
    chain = NewsRetriever(pipeline=pipeline, k=2) | RunnableLambda(context)
    text = chain.invoke(SUBMARINE_Q, config={"callbacks": [recorder]})
    docs = pipeline.retrieve(SUBMARINE_Q, 2)
    assert text == "\n".join(f"[{n}] {p.source}:{p.start}-{p.end}" for n, p in enumerate(docs, start=1))
    assert recorder.events == [("start", SUBMARINE_Q), ("end", [p.source for p in docs])]
    with pytest.raises(BadInput):
        chain.invoke("  ", config={"callbacks": [recorder]})
    assert recorder.events[-1] == ("error", "BadInput")


# ----- news metadata and filters, pushed down
def test_selective_filters_keep_k_full(news: Pipeline) -> None:
    unfiltered = [d.metadata["outlet"] for d in NewsRetriever(pipeline=news, k=5).invoke(BRIDGE_Q)]
    assert unfiltered.count("Radio Nordost") < 5  # selective: filtering the best 5 afterwards would starve
    nordost = NewsRetriever(pipeline=news, k=5, filters={"outlet": "radio nordost"})
    docs = nordost.invoke(BRIDGE_Q)
    assert len(docs) == 5 and {d.metadata["outlet"] for d in docs} == {"Radio Nordost"}
    assert [d.id for d in asyncio.run(nordost.ainvoke(BRIDGE_Q))] == [d.id for d in docs]
    assert [d.id for d in docs] == [p.id for p in news.retrieve(BRIDGE_Q, 5, outlet="Radio Nordost")]
    in_2023 = NewsRetriever(pipeline=news, k=5, filters={"outlet": ["Radio Nordost"], "until": "2023"}).invoke(BRIDGE_Q)
    assert len(in_2023) == 5  # all of them: the bridge (3 chunks) and the storm (2)
    assert {d.metadata["source"] for d in in_2023} == {"radio-nordost-havelbruecke.txt", "radio-nordost-sturm.txt"}
    january = NewsRetriever(pipeline=news, k=5, filters={"since": "2024-01", "until": "2024-01"}).invoke(POOL_Q)
    assert len(january) == 5
    assert all("2024-01-01" <= (d.metadata["published"] or d.metadata["updated"])[:10] <= "2024-01-31" for d in january)
    two = NewsRetriever(pipeline=news, k=5, filters={"source": list(BRIDGE[:2])}).invoke(BRIDGE_Q)
    assert len(two) == 5 and {d.metadata["source"] for d in two} <= set(BRIDGE[:2])
    assert NewsRetriever(pipeline=news, k=5, filters={"outlet": "Keine Zeitung"}).invoke(BRIDGE_Q) == []
    for doc in docs + in_2023 + january + two:
        _title, outlet, url, author, published, updated = EXPECTED[doc.metadata["source"]]
        assert {k: doc.metadata[k] for k in ARTICLE_KEYS} == {
            "outlet": outlet,
            "url": url,
            "author": author,
            "published": published,
            "updated": updated,
        }
        assert passage_from_document(doc).meta.outlet == outlet
    assert_points_into_articles(news, docs + in_2023)


@pytest.mark.parametrize(
    "given",
    [
        {"since": "2024-13"},
        {"until": "letzte Woche"},
        {"since": "2024-02", "until": "2024-01"},
    ],
)
def test_bad_filter_values_have_the_http_apis_words(news: Pipeline, given: dict) -> None:
    with pytest.raises(BadInput) as product:
        make_filters(**given)  # what the HTTP API's fields go through
    with pytest.raises(BadInput) as built:
        NewsRetriever(pipeline=news, filters=given)
    assert message(built) == message(product)


def test_unsupported_filter_keys_are_refused(news: Pipeline) -> None:
    with pytest.raises(BadInput) as refused:
        NewsRetriever(pipeline=news, filters={"from": "2023", "outlet": "Radio Nordost"})
    assert message(refused) == (
        "Unsupported filter 'from': supported filters are outlet and source (a name or a "
        "list of names), since and until (2023-09-12, 2023-09 or 2023)."
    )
    with pytest.raises(BadInput, match=r"^Outlet and source filters are names \(text\)\.$"):
        NewsRetriever(pipeline=news, filters={"outlet": ["Radio Nordost", 3]})


# ----- errors: ours, unchanged, with the messages the HTTP API sends
def message(exc: pytest.ExceptionInfo) -> str:
    return " ".join(str(exc.value).split())


def test_bad_questions_and_k(pipeline: Pipeline) -> None:
    retriever = NewsRetriever(pipeline=pipeline, k=2)
    for question in ("", "   ", "?!"):
        with pytest.raises(BadInput) as sync_error:
            retriever.invoke(question)
        with pytest.raises(BadInput) as async_error:
            asyncio.run(retriever.ainvoke(question))
        with pytest.raises(BadInput) as product:
            check_question(question)  # what Pipeline.retrieve (and so the HTTP API) says
        assert message(sync_error) == message(async_error) == message(product)
    for k in (0, 51, -3):
        with pytest.raises(BadInput, match=rf"k must be from 1 to 50 .*got {k}\."):
            NewsRetriever(pipeline=pipeline, k=k)


def test_empty_store(tmp_path: Path) -> None:
    with Pipeline(Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache", embedder="fake")) as empty:
        retriever = NewsRetriever(pipeline=empty)
        with pytest.raises(EmptyStore, match="No articles are indexed yet"):
            retriever.invoke(SUBMARINE_Q)
        with pytest.raises(EmptyStore):
            asyncio.run(retriever.ainvoke(SUBMARINE_Q))


def test_store_going_away(tmp_path: Path) -> None:
    with ChromaProcess(tmp_path) as chroma:
        with Pipeline(Settings(chroma_url=chroma.url, cache_dir=tmp_path / "cache", embedder="fake")) as remote:
            remote.index()
            retriever = NewsRetriever(pipeline=remote, k=1)
            assert retriever.invoke(SUBMARINE_Q)[0].metadata["source"] == SUBMARINE_SOURCE
            chroma.stop()
            for run in (lambda: retriever.invoke(SUBMARINE_Q), lambda: asyncio.run(retriever.ainvoke(SUBMARINE_Q))):
                with pytest.raises(StoreUnavailable) as failed:
                    run()
                assert message(failed).startswith(f"The Chroma store at {chroma.url} failed: ")
                assert "\n" not in str(failed.value)


def test_passage_from_a_foreign_document_is_refused() -> None:
    with pytest.raises(ValueError, match="did not come from NewsRetriever"):
        passage_from_document(Document(page_content="x", metadata={"source": "a"}))


# ----- an optional extra
def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-c", code], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120
    )


def test_rag_does_not_import_langchain(tmp_path: Path) -> None:
    proc = run_python("import sys, rag, rag.llama\nprint('langchain_core' in sys.modules)", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_missing_langchain_core_says_how_to_install_it(tmp_path: Path) -> None:
    blocked = (
        "import sys\nsys.modules['langchain_core'] = None  # as if it were not installed\n"
        "try:\n    import rag.langchain\nexcept ModuleNotFoundError as exc:\n    print(exc.name, '|', exc)\n"
    )
    proc = run_python(blocked, tmp_path)
    assert proc.returncode == 0, proc.stderr
    name, text = proc.stdout.strip().split(" | ")
    assert name == "langchain_core"
    assert text == (
        "rag.langchain needs langchain-core, which is not installed: pip install 'rag-news[langchain]' "
        "(or pip install langchain-core)."
    )
