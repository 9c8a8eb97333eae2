"""Articles into the store: load, clean, chunk, embed, write (dense + keyword).

The public surface is small; :mod:`rag` builds these pieces from settings.
"""

from index.chunk import Chunker
from index.embed import Embedder, make_embedder
from index.keyword import KeywordIndex, analyze
from index.pipeline import Indexer, IndexReport
from index.store import ArticleInfo, ChromaStore, open_client

__all__ = [
    "ArticleInfo",
    "ChromaStore",
    "Chunker",
    "Embedder",
    "IndexReport",
    "Indexer",
    "KeywordIndex",
    "analyze",
    "make_embedder",
    "open_client",
]
