"""The LangChain retriever (rag.langchain) with the real langchain-core over a real store
(Chroma in a temp folder, BM25, the fake embedder): sync and async, inside a runnable chain,
with LangChain's own callbacks, and our errors with the messages every edge gives."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from conftest import PYTHON, clean_env

pytest.importorskip("langchain_core")

from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402

from rag import BadInput, EmptyStore, Pipeline, Settings, StoreUnavailable  # noqa: E402
from rag.api import check_question  # noqa: E402
from rag.langchain import NewsRetriever, passage_from_document  # noqa: E402
from tests.edge_support import ChromaProcess  # noqa: E402

SUBMARINE_Q = "Wie viele Raketen mit Nuklearsprengköpfen kann das Atom-U-Boot tragen?"
SUBMARINE_SOURCE = "004_7f32bc9d79f56e77.txt"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    base = tmp_path_factory.mktemp("langchain")
    pipe = Pipeline(Settings(store=base / "store", cache_dir=base / "cache", embedder="fake", generator="extractive"))
    pipe.index()
    yield pipe
    pipe.close()


def assert_points_into_articles(pipeline: Pipeline, docs: list[Document]) -> None:
    for doc in docs:
        article = pipeline.article(doc.metadata["source"])
        assert doc.page_content == article.text[doc.metadata["start"]:doc.metadata["end"]]
        assert doc.metadata["title"] == article.title


def test_invoke_returns_documents_with_our_offsets_and_scores(pipeline: Pipeline) -> None:
    docs = NewsRetriever(pipeline=pipeline, k=3).invoke(SUBMARINE_Q)
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    assert docs[0].metadata["source"] == SUBMARINE_SOURCE and "zehn Raketen" in docs[0].page_content
    assert set(docs[0].metadata) == {"source", "title", "start", "end", "score"}
    assert_points_into_articles(pipeline, docs)
    passages = pipeline.retrieve(SUBMARINE_Q, 3)  # the same ranking as the product's own retriever
    assert [d.id for d in docs] == [p.id for p in passages]
    assert [d.metadata["score"] for d in docs] == [p.score for p in passages]
    assert [d.metadata["score"] for d in docs] == sorted((d.metadata["score"] for d in docs), reverse=True)
    back = passage_from_document(docs[0])
    assert (back.id, back.source, back.start, back.end, back.text, back.score) == (
        passages[0].id, passages[0].source, passages[0].start, passages[0].end, passages[0].text, passages[0].score)


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
        return "\n".join(f"[{n}] {d.metadata['source']}:{d.metadata['start']}-{d.metadata['end']}"
                         for n, d in enumerate(docs, start=1))

    recorder = Recorder()
    chain = NewsRetriever(pipeline=pipeline, k=2) | RunnableLambda(context)
    text = chain.invoke(SUBMARINE_Q, config={"callbacks": [recorder]})
    docs = pipeline.retrieve(SUBMARINE_Q, 2)
    assert text == "\n".join(f"[{n}] {p.source}:{p.start}-{p.end}" for n, p in enumerate(docs, start=1))
    assert recorder.events == [("start", SUBMARINE_Q), ("end", [p.source for p in docs])]
    with pytest.raises(BadInput):
        chain.invoke("  ", config={"callbacks": [recorder]})
    assert recorder.events[-1] == ("error", "BadInput")


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
    return subprocess.run([PYTHON, "-c", code], cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                          timeout=120)


def test_rag_does_not_import_langchain(tmp_path: Path) -> None:
    proc = run_python("import sys, rag, rag.llama\nprint('langchain_core' in sys.modules)", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_missing_langchain_core_says_how_to_install_it(tmp_path: Path) -> None:
    blocked = ("import sys\nsys.modules['langchain_core'] = None  # as if it were not installed\n"
               "try:\n    import rag.langchain\nexcept ModuleNotFoundError as exc:\n    print(exc.name, '|', exc)\n")
    proc = run_python(blocked, tmp_path)
    assert proc.returncode == 0, proc.stderr
    name, text = proc.stdout.strip().split(" | ")
    assert name == "langchain_core"
    assert text == ("rag.langchain needs langchain-core, which is not installed: pip install 'rag-news[langchain]' "
                    "(or pip install langchain-core).")
