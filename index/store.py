"""Chroma storage: a chunks collection (vectors + chunk text + offsets) and an articles
collection (the cleaned article text the offsets point into, and its content hash).

Both collections are named after the index fingerprint, so changing the embedder or the
chunking starts a fresh pair instead of mixing vectors. Works the same against a local
folder (``PersistentClient``) and a Chroma server (``HttpClient``). Chroma types stay in
this module: callers get our :class:`~rag.types.Chunk` and :class:`~rag.types.Article`.

An article's record is written *after* its chunks, and carries the hash of the text its
chunks were made from; retrieval drops chunks whose hash does not match their article's
record, so a run killed half-way never shows half an article.

Article metadata (outlet, URL, author, dates) is kept on the record and on every chunk, as
Chroma scalars: ISO date strings, plus ``day`` (an integer day number) and ``outlet_key``
(the outlet casefolded) that :class:`~rag.types.Filters` are applied to inside the query's
``where``. Missing fields are absent keys, so an undated chunk never passes a date filter.

Near-duplicate grouping (:mod:`index.dedup`) adds ``group``, ``story`` and the LSH band keys
(``mh0`` …) to every chunk and ``story`` to the record; a new chunk's copies are found by a
``where`` on the band keys, a passage's copies by a ``where`` on ``group``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from index.dedup import BAND_KEYS, GROUPING_VERSION, Stored
from index.meta import METADATA_VERSION
from rag.errors import ModelUnavailable, StoreUnavailable
from rag.types import NO_META, Article, ArticleMeta, Chunk, Filters, day_number, outlet_key

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

_ARTICLE_VECTOR = [1.0]  # the articles collection is looked up by id only
_DIM_MISMATCH = re.compile(r"expecting embedding with dimension of (\d+), got (\d+)")  # chromadb's wording (1.5)


@dataclass(frozen=True)
class ArticleInfo:
    """An article's record without its text (cheap to list)."""

    source: str
    title: str
    root: str
    content_hash: str
    chunks: int
    chars: int
    meta: ArticleMeta = NO_META
    meta_hash: str = ""  # hash of the metadata as last written ("" for records older than metadata)
    story: str = ""  # its story (index.dedup): articles that share a near-duplicate passage or a URL


def article_key(source: str) -> str:
    return "a-" + hashlib.sha256(source.encode()).hexdigest()[:32]


META_KEYS = ("outlet", "url", "author", "published", "updated")
DERIVED_KEYS = ("outlet_key", "day")


def meta_fields(meta: ArticleMeta) -> dict[str, str | int]:
    """An article's metadata as Chroma metadata: its non-empty fields, plus the filter keys."""
    out: dict[str, str | int] = {k: v for k, v in meta.to_json().items() if v}
    if meta.outlet:
        out["outlet_key"] = outlet_key(meta.outlet)
    if meta.day is not None:
        out["day"] = meta.day
    return out


def meta_upsert(meta: ArticleMeta) -> dict[str, str | int | None]:
    """:func:`meta_fields` with None for every absent key: Chroma's upsert and update merge
    metadata into what a record held, and None is what removes a key."""
    return {**dict.fromkeys((*META_KEYS, *DERIVED_KEYS)), **meta_fields(meta)}


def meta_hash(article: Article) -> str:
    """What a record's metadata was written from (the extraction version included): a re-index
    that reads different metadata from the same text rewrites it without embedding anything."""
    data = json.dumps(
        [METADATA_VERSION, GROUPING_VERSION, article.title, article.meta.to_json()], sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def meta_from(fields: dict) -> ArticleMeta:
    return ArticleMeta(**{k: str(fields.get(k) or "") for k in META_KEYS})


def where_of(filters: Filters | None) -> dict | None:
    """The Chroma ``where`` clause for ``filters`` (None when they admit everything)."""
    if not filters:
        return None
    clauses: list[dict] = []
    if filters.sources:
        clauses.append({"source": {"$in": sorted(filters.sources)}})
    if filters.outlets:
        clauses.append({"outlet_key": {"$in": list(filters.outlet_keys)}})
    if filters.since:
        clauses.append({"day": {"$gte": day_number(filters.since)}})
    if filters.until:
        clauses.append({"day": {"$lte": day_number(filters.until)}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def open_client(store_path: str, chroma_url: str | None) -> ClientAPI:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if chroma_url:
            url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
            client = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
            return client
        return chromadb.PersistentClient(path=store_path, settings=chroma_settings)
    except Exception as exc:  # chromadb raises many unrelated types for "cannot reach"
        where = chroma_url or store_path
        raise StoreUnavailable(
            f"Cannot open the Chroma store at {where}: {_short(exc)}. "
            "Is the server running (chroma run --path DIR), or is the folder writable?"
        ) from exc


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


class ChromaStore:
    def __init__(self, client: ClientAPI, fingerprint: str, where: str) -> None:
        self._where = where
        try:
            self._chunks = client.get_or_create_collection(
                f"chunks_{fingerprint}", metadata={"hnsw:space": "cosine"}, embedding_function=None
            )
            self._articles = client.get_or_create_collection(
                f"articles_{fingerprint}", metadata={"hnsw:space": "l2"}, embedding_function=None
            )
            self._max_batch = max(int(client.get_max_batch_size()), 1)
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"The Chroma store at {self._where} failed: {_short(exc)}. "
            "Check that the Chroma server is running and reachable, then try again."
        )

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # Any: Chroma's results (ids, documents, metadatas as parallel lists) are read here as the plain
        # dicts they are, checked for None row by row; their own types stay inside this module.
        try:
            return fn(*args, **kwargs)
        except StoreUnavailable:
            raise
        except Exception as exc:
            sizes = _DIM_MISMATCH.search(str(exc))
            if sizes:  # not an outage: the embedder now gives vectors of another size than this index holds
                raise ModelUnavailable(
                    f"The index in the Chroma store at {self._where} holds {sizes[1]}-dimensional vectors, but the "
                    f"embedder now gives {sizes[2]}-dimensional ones: the model behind these settings changed. "
                    "Restore the model (or embedder_dim), or index into a new store."
                ) from exc
            raise self._unavailable(exc) from exc

    # ----- articles
    def articles(self) -> dict[str, ArticleInfo]:
        got = self._call(self._articles.get, include=["metadatas"])
        return {m["source"]: _info(m) for m in got["metadatas"] or []}

    def article(self, source: str) -> Article | None:
        got = self._call(self._articles.get, ids=[article_key(source)], include=["metadatas", "documents"])
        if not got["ids"]:
            return None
        meta, text = got["metadatas"][0], got["documents"][0]
        return Article(
            source=meta["source"],
            title=meta["title"],
            text=text,
            content_hash=meta["content_hash"],
            root=meta.get("root", ""),
            meta=meta_from(meta),
            story=str(meta.get("story") or ""),
        )

    def article_count(self) -> int:
        return int(self._call(self._articles.count))

    def put_articles(self, items: Sequence[tuple[Article, int]]) -> None:
        """Write article records (with how many chunks each has, and their metadata and its hash),
        in as few calls as Chroma allows."""
        items = list(items)
        for i in range(0, len(items), self._max_batch):
            part = items[i : i + self._max_batch]
            self._call(
                self._articles.upsert,
                ids=[article_key(a.source) for a, _ in part],
                embeddings=[_ARTICLE_VECTOR] * len(part),
                documents=[a.text for a, _ in part],
                metadatas=[
                    {
                        "source": a.source,
                        "title": a.title,
                        "root": a.root,
                        "content_hash": a.content_hash,
                        "chunks": n,
                        "chars": len(a.text),
                        "meta_hash": meta_hash(a),
                        **meta_upsert(a.meta),
                        "story": a.story or None,
                    }
                    for a, n in part
                ],
            )

    def delete_article(self, source: str) -> None:
        self._call(self._articles.delete, ids=[article_key(source)])

    # ----- chunks
    def add_chunks(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        content_hashes: Sequence[str],
        extra: Sequence[dict] | None = None,
    ) -> None:
        """Write chunks with their vectors; ``content_hashes[i]`` is chunk i's article text hash,
        ``extra[i]`` more metadata for it (its LSH band keys)."""
        for i in range(0, len(chunks), self._max_batch):
            part = chunks[i : i + self._max_batch]
            self._call(
                self._chunks.upsert,
                ids=[c.id for c in part],
                embeddings=vectors[i : i + len(part)],
                documents=[c.text for c in part],
                metadatas=[
                    {
                        "source": c.source,
                        "title": c.title,
                        "start": c.start,
                        "end": c.end,
                        "index": c.index,
                        "content_hash": h,
                        **meta_upsert(c.meta),
                        "group": c.group or None,
                        "story": c.story or None,
                        **(extra[i + j] if extra else {}),
                    }
                    for j, (c, h) in enumerate(zip(part, content_hashes[i : i + len(part)], strict=True))
                ],
            )

    def set_chunk_meta(self, ids: Sequence[str], meta: ArticleMeta, extra: dict[str, dict] | None = None) -> None:
        """Replace the article metadata on existing chunks, vectors untouched (a key set to None
        is removed by Chroma's update); ``extra[id]``: more fields for one chunk (its grouping)."""
        fields = meta_upsert(meta)
        ids = list(ids)
        for i in range(0, len(ids), self._max_batch):
            part = ids[i : i + self._max_batch]
            self._call(self._chunks.update, ids=part, metadatas=[{**fields, **(extra or {}).get(c, {})} for c in part])

    # ----- near-duplicates (index.dedup)
    def copy_candidates(self, wanted: dict[str, set[int]]) -> list[Stored]:
        """Stored chunks that share a band key with ``wanted`` (band key -> values), with their text."""
        clauses = [{key: {"$in": sorted(values)}} for key, values in sorted(wanted.items()) if values]
        if not clauses:
            return []
        got = self._call(
            self._chunks.get,
            where=clauses[0] if len(clauses) == 1 else {"$or": clauses},
            include=["documents", "metadatas"],
        )
        return [
            Stored(
                i,
                m["source"],
                d,
                str(m.get("group") or i),
                str(m.get("story") or ""),
                {k: m[k] for k in BAND_KEYS if k in m},
                str(m.get("url") or ""),
            )
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            if d is not None and m is not None
        ]

    def stories_by_url(self, urls: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """For each URL, the (source, story) of the stored articles that carry it."""
        urls = sorted({u for u in urls if u})
        out: dict[str, list[tuple[str, str]]] = {}
        if urls:
            got = self._call(self._articles.get, where={"url": {"$in": urls}}, include=["metadatas"])
            for m in got["metadatas"] or []:
                out.setdefault(m["url"], []).append((m["source"], str(m.get("story") or "")))
        return out

    def group_members(self, groups: Sequence[str], filters: Filters | None = None) -> dict[str, tuple[Chunk, str]]:
        """Every stored chunk of these near-duplicate groups that passes ``filters`` (id -> chunk, content hash)."""
        groups = sorted({g for g in groups if g})
        if not groups:
            return {}
        where = {"group": {"$in": groups}}
        narrower = where_of(filters)
        got = self._call(
            self._chunks.get,
            where={"$and": [where, narrower]} if narrower else where,
            include=["documents", "metadatas"],
        )
        return {
            i: (_chunk(i, d, m), m["content_hash"])
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            if d is not None and m is not None
        }

    def chunk_ids(self, source: str | None = None) -> set[str]:
        where = {"source": source} if source is not None else None
        got = self._call(self._chunks.get, where=where, include=[])
        return set(got["ids"])

    def chunk_ids_for(self, sources: Sequence[str]) -> set[str]:
        """Ids of the chunks of any of ``sources`` (one query per few hundred sources)."""
        sources = sorted(set(sources))
        ids: set[str] = set()
        for i in range(0, len(sources), 500):
            got = self._call(self._chunks.get, where={"source": {"$in": sources[i : i + 500]}}, include=[])
            ids.update(got["ids"])
        return ids

    def delete_chunks(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), self._max_batch):
            self._call(self._chunks.delete, ids=ids[i : i + self._max_batch])

    def get_chunks(self, ids: Sequence[str]) -> dict[str, tuple[Chunk, str]]:
        """Chunks by id, each with the content hash of the article text it was cut from."""
        if not ids:
            return {}
        got = self._call(self._chunks.get, ids=list(ids), include=["documents", "metadatas"])
        return {
            i: (_chunk(i, d, m), m["content_hash"])
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }

    def query(self, vector: np.ndarray, n: int, filters: Filters | None = None) -> list[tuple[Chunk, str, float]]:
        """Nearest chunks that pass ``filters``: (chunk, content hash, cosine similarity), best first.

        The filters are Chroma's ``where``, applied inside the search: ``n`` chunks come back
        whenever ``n`` pass, however few of all chunks that is.
        """
        # No count() first: Chroma returns fewer (or no) results when it holds fewer, and the
        # extra call was a fifth of a warm dense query.
        got = self._call(
            self._chunks.query,
            query_embeddings=[vector],
            n_results=n,
            where=where_of(filters),
            include=["documents", "metadatas", "distances"],
        )
        # A deleted chunk can still come back from the vector index without its record (another
        # process deleted it, or one was killed mid-write): it is gone, skip it.
        return [
            (_chunk(i, d, m), m["content_hash"], 1.0 - float(dist))
            for i, d, m, dist in zip(
                got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0], strict=True
            )
            if d is not None and m is not None
        ]

    def count(self) -> int:
        return int(self._call(self._chunks.count))


def _info(meta: dict) -> ArticleInfo:
    return ArticleInfo(
        source=meta["source"],
        title=meta["title"],
        root=meta.get("root", ""),
        content_hash=meta["content_hash"],
        chunks=int(meta.get("chunks", 0)),
        chars=int(meta.get("chars", 0)),
        meta=meta_from(meta),
        meta_hash=str(meta.get("meta_hash", "")),
        story=str(meta.get("story") or ""),
    )


def _chunk(chunk_id: str, text: str, meta: dict) -> Chunk:
    return Chunk(
        id=chunk_id,
        source=meta["source"],
        title=meta["title"],
        text=text,
        start=int(meta["start"]),
        end=int(meta["end"]),
        index=int(meta.get("index", 0)),
        meta=meta_from(meta),
        group=str(meta.get("group") or ""),
        story=str(meta.get("story") or ""),
    )
