"""The llama-index adapters (rag.llama): our retriever and embedders inside llama-index,
with a fake LLM, and llama-index's global Settings never consulted (it falls back to OpenAI)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.callbacks import CallbackManager
from llama_index.core.llms import CustomLLM, MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.core.settings import _Settings

from index.embed import FakeEmbedder
from rag import BadInput, EmptyStore, Passage, Pipeline, Settings
from rag.llama import LlamaEmbedding, NewsRetriever, build_query_engine, passage_from_node

QUESTION = "Wie viele Raketen kann das U-Boot tragen?"


# Read by every llama-index ``CallbackManager()`` to inherit globally registered handlers:
# a read of the user's own global choice, never a fallback to a default model.
_ALLOWED_SETTINGS_READS = {"_callback_manager"}


@pytest.fixture(autouse=True)
def global_settings_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading llama_index.core.Settings (LLM, embed model, prompt helper, ...) or setting it fails the test."""

    def forbidden_get(self: Any, name: str) -> Any:
        if name.startswith("__") or name in _ALLOWED_SETTINGS_READS:
            return object.__getattribute__(self, name)
        raise AssertionError(f"llama_index.core.Settings.{name} was used")

    def forbidden_set(self: Any, name: str, value: Any) -> None:
        raise AssertionError(f"llama_index.core.Settings.{name} was set")

    monkeypatch.setattr(_Settings, "__getattribute__", forbidden_get)
    monkeypatch.setattr(_Settings, "__setattr__", forbidden_set)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    base = tmp_path_factory.mktemp("llama")
    pipe = Pipeline(Settings(store=base / "store", cache_dir=base / "cache", embedder="fake", generator="extractive"))
    pipe.index()
    return pipe


class RecordingLLM(CustomLLM):
    """A fake LLM: records the prompts it gets and answers with a fixed, cited sentence."""

    reply: str = "Das U-Boot kann zehn Raketen tragen [1]."
    prompts: list[str] = []

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=4096, num_output=128, model_name="recording")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.prompts.append(prompt)
        return CompletionResponse(text=self.reply)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        self.prompts.append(prompt)

        def pieces() -> Iterator[CompletionResponse]:
            text = ""
            for word in self.reply.split(" "):
                delta = (" " if text else "") + word
                text += delta
                yield CompletionResponse(text=text, delta=delta)

        return pieces()


def test_settings_guard_works() -> None:
    from llama_index.core import Settings as LlamaSettings

    with pytest.raises(AssertionError, match="Settings.llm was used"):
        _ = LlamaSettings.llm
    with pytest.raises(AssertionError, match="Settings.embed_model was set"):
        LlamaSettings.embed_model = "local"


def test_retriever_nodes_carry_our_metadata(pipeline: Pipeline) -> None:
    ours = pipeline.retrieve(QUESTION, k=3)
    nodes = NewsRetriever(pipeline, k=3).retrieve(QUESTION)
    assert [n.node.node_id for n in nodes] == [p.id for p in ours]
    for node, passage in zip(nodes, ours, strict=True):
        assert isinstance(node, NodeWithScore) and isinstance(node.node, TextNode)
        assert node.node.metadata == {
            "source": passage.source,
            "title": passage.title,
            "start": passage.start,
            "end": passage.end,
            **passage.meta.to_json(),
            "group": passage.group,
            "story": passage.story,
            "also_in": [c.to_json() for c in passage.also_in],
        }
        assert node.node.text == passage.text
        assert (node.node.start_char_idx, node.node.end_char_idx) == (passage.start, passage.end)
        assert node.score == pytest.approx(passage.score)
        # offsets point into the stored article
        assert pipeline.article(passage.source).text[passage.start : passage.end] == passage.text
        # what an LLM sees: the title and source, not the offsets
        llm_view = node.node.get_content(metadata_mode="llm")
        assert passage.title in llm_view and "start:" not in llm_view
        back = passage_from_node(node)
        assert back == Passage(
            id=passage.id,
            source=passage.source,
            title=passage.title,
            text=passage.text,
            start=passage.start,
            end=passage.end,
            score=back.score,
            meta=passage.meta,
            group=passage.group,
            story=passage.story,
            also_in=passage.also_in,
        )


def test_retriever_default_k_and_async(pipeline: Pipeline) -> None:
    nodes = asyncio.run(NewsRetriever(pipeline).aretrieve(QUESTION))
    assert len(nodes) == pipeline.settings.top_k
    assert "U-Boot" in nodes[0].node.text


def test_retriever_passes_our_errors_through(pipeline: Pipeline, tmp_path) -> None:
    with pytest.raises(BadInput):
        NewsRetriever(pipeline).retrieve("   ")
    empty = Pipeline(Settings(store=tmp_path / "empty", cache_dir=tmp_path / "cache", embedder="fake"))
    with pytest.raises(EmptyStore):
        NewsRetriever(empty).retrieve(QUESTION)


def test_passage_from_foreign_node_is_refused() -> None:
    with pytest.raises(ValueError, match="lacks metadata"):
        passage_from_node(NodeWithScore(node=TextNode(text="x"), score=1.0))


def test_retriever_query_engine_with_fake_llm(pipeline: Pipeline) -> None:
    llm = RecordingLLM(prompts=[])
    engine = build_query_engine(NewsRetriever(pipeline, k=3), llm=llm)
    response = engine.query(QUESTION)
    assert str(response) == llm.reply
    assert len(llm.prompts) == 1
    passages = [passage_from_node(n) for n in response.source_nodes]
    assert [p.to_json() for p in passages] == [p.to_json() for p in pipeline.retrieve(QUESTION, k=3)]
    for p in passages:  # the passages reached the LLM's prompt, with their titles
        assert p.text[:80] in llm.prompts[0] and f"title: {p.title}" in llm.prompts[0]
    assert QUESTION in llm.prompts[0]


def test_streaming_query_engine_and_mock_llm(pipeline: Pipeline) -> None:
    llm = RecordingLLM(prompts=[])
    engine = build_query_engine(NewsRetriever(pipeline, k=2), llm=llm, streaming=True)
    streamed = engine.query(QUESTION)
    assert "".join(streamed.response_gen) == llm.reply
    # llama-index's own MockLLM (echoes its prompt) works the same way
    echo = build_query_engine(NewsRetriever(pipeline, k=1), llm=MockLLM(), response_mode="simple_summarize")
    response = echo.query(QUESTION)
    assert response.source_nodes[0].node.text[:60] in str(response)


def test_embedding_adapter_matches_our_embedder() -> None:
    fake = FakeEmbedder()
    adapter = LlamaEmbedding(fake, embed_batch_size=2)
    assert adapter.model_name == fake.name
    texts = ["Kim Jong Un reist nach Russland.", "Putin empfängt Kim.", "Raketen und Munition."]
    query = adapter.get_query_embedding("Wer reist nach Russland?")
    assert np.allclose(query, fake.embed(["Wer reist nach Russland?"], "query")[0])
    batch = adapter.get_text_embedding_batch(texts)  # 2 + 1: batching goes through _get_text_embeddings
    assert np.allclose(batch, fake.embed(texts, "passage"))
    assert np.allclose(adapter.get_text_embedding(texts[1]), batch[1])
    assert np.allclose(asyncio.run(adapter.aget_query_embedding("Putin")), fake.embed(["Putin"], "query")[0])
    assert np.allclose(asyncio.run(adapter.aget_text_embedding_batch(texts)), batch)
    assert all(isinstance(x, float) for x in query)


def test_embedding_adapter_in_a_vector_index() -> None:
    """llama-index's own VectorStoreIndex, embedding through the adapter, ranks by meaning (lexical here)."""
    from llama_index.core import StorageContext, VectorStoreIndex

    texts = {
        "rockets": "Das U-Boot kann zehn Raketen mit Atomsprengköpfen tragen.",
        "trip": "Kim Jong Un reiste mit dem gepanzerten Zug nach Wladiwostok.",
        "weather": "Am Wochenende wird es in Bayern sonnig und warm.",
    }
    nodes = [TextNode(id_=key, text=text) for key, text in texts.items()]
    adapter = LlamaEmbedding(FakeEmbedder())
    # Every part given: an empty transformations list would fall back to Settings.transformations.
    index = VectorStoreIndex(
        nodes,
        embed_model=adapter,
        storage_context=StorageContext.from_defaults(),
        callback_manager=CallbackManager([]),
        transformations=[adapter],
    )
    hits = index.as_retriever(similarity_top_k=3).retrieve("Wie viele Raketen trägt das U-Boot?")
    assert hits[0].node.node_id == "rockets"
    assert hits[-1].node.node_id == "weather"
