"""The product's retriever as a LangChain ``BaseRetriever`` (the optional extra
``pip install 'rag-news[langchain]'``, which is only ``langchain-core``).

    from rag import open_store
    from rag.langchain import NewsRetriever
    retriever = NewsRetriever(pipeline=open_store("rag-store"), k=3)
    for doc in retriever.invoke("Wie viele Raketen kann das U-Boot tragen?"):   # or await .ainvoke(...)
        print(doc.metadata["source"], doc.metadata["start"], doc.metadata["end"], doc.metadata["score"])
    NewsRetriever(pipeline=..., filters={"outlet": "Radio Nordost", "since": "2023-09"})   # pushed down

Each result is a ``Document`` whose ``page_content`` is the passage text, ``id`` our
``Passage.id``, and ``metadata`` holds ``source``, ``title``, ``start``, ``end`` (character
offsets into the article's cleaned text: ``page_content == article.text[start:end]``),
``score`` (the fused retrieval score, higher is better) and the article's ``outlet``, ``url``,
``author``, ``published``, ``updated`` ("" where the article does not say).
:func:`passage_from_document` converts back at the edge.

``filters`` takes the keys of the HTTP API and the MCP tools (outlet, source, since, until) and
goes into the search itself (Chroma's ``where``, the keyword index), so ``k`` stays full.

Errors are ours, unchanged, with the messages every edge gives: :class:`rag.BadInput` for an
empty question, a ``k`` outside 1..50 or a bad filter (both when the retriever is built),
:class:`rag.EmptyStore` before anything is indexed, :class:`rag.StoreUnavailable` when Chroma
cannot be reached. Left out: answering (wire the documents into your own chain, or call
``pipeline.ask`` for a checked, cited answer).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ModuleNotFoundError as exc:  # an optional extra: say how to get it
    if (exc.name or "").split(".")[0] != "langchain_core":
        raise  # langchain-core is there but broken (one of its own dependencies is missing)
    raise ModuleNotFoundError(
        "rag.langchain needs langchain-core, which is not installed: pip install 'rag-news[langchain]' "
        "(or pip install langchain-core).",
        name="langchain_core",
    ) from None

from pydantic import field_validator

from rag.errors import BadInput
from rag.filters import filters_from_mapping
from rag.types import ArticleMeta, Filters, Passage

MAX_K = 50  # as the HTTP API and the MCP tools
META_KEYS = ("source", "title", "start", "end", "score")
ARTICLE_KEYS = ("outlet", "url", "author", "published", "updated")  # ArticleMeta's fields


class PassageSource(Protocol):
    """Anything that retrieves our passages: :class:`rag.Pipeline` or a test double."""

    def retrieve(self, question: str, k: int | None = None, *, filters: Filters | None = None) -> list[Passage]: ...


class NewsRetriever(BaseRetriever):
    """The product's hybrid retriever (dense + BM25), seen from LangChain.

    ``k`` is the number of documents (default: the pipeline's ``top_k`` setting); ``filters``
    (``{"outlet": ..., "source": ..., "since": ..., "until": ...}``, any of them) restricts the search.
    """

    pipeline: Any  # PassageSource; Any, so pydantic takes a Pipeline without a schema for it
    k: int | None = None
    filters: dict[str, Any] | None = None

    @field_validator("k")
    @classmethod
    def _k_in_range(cls, k: int | None) -> int | None:
        if k is not None and not 1 <= k <= MAX_K:
            raise BadInput(f"k must be from 1 to {MAX_K} (the number of passages to return); got {k}.")
        return k

    @field_validator("filters")
    @classmethod
    def _filters_readable(cls, filters: dict[str, Any] | None) -> dict[str, Any] | None:
        filters_from_mapping(filters)  # a bad key or date fails here, with the HTTP API's words
        return filters

    def _search(self, query: str) -> list[Passage]:
        chosen = filters_from_mapping(self.filters)
        if chosen:  # only then: a PassageSource without filters keeps working
            return self.pipeline.retrieve(query, self.k, filters=chosen)
        return self.pipeline.retrieve(query, self.k)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [document_from_passage(p) for p in self._search(query)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        passages = await asyncio.to_thread(self._search, query)  # blocks: Chroma, the embedder
        return [document_from_passage(p) for p in passages]


def document_from_passage(passage: Passage) -> Document:
    return Document(
        page_content=passage.text,
        id=passage.id,
        metadata={
            "source": passage.source,
            "title": passage.title,
            "start": passage.start,
            "end": passage.end,
            "score": float(passage.score),
            **passage.meta.to_json(),
        },
    )


def passage_from_document(document: Document) -> Passage:
    """Back to our type (e.g. for the documents a chain returns)."""
    meta = document.metadata
    missing = [k for k in META_KEYS if k not in meta]
    if missing or not document.id:
        raise ValueError(f"Document {document.id!r} lacks {missing or ['id']}: it did not come from NewsRetriever.")
    article = ArticleMeta(**{k: str(meta.get(k) or "") for k in ARTICLE_KEYS})
    return Passage(
        id=document.id,
        source=str(meta["source"]),
        title=str(meta["title"]),
        text=document.page_content,
        start=int(meta["start"]),
        end=int(meta["end"]),
        score=float(meta["score"]),
        meta=article,
    )


__all__ = ["NewsRetriever", "document_from_passage", "passage_from_document"]
