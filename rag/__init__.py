"""Ask questions about a collection of news articles; every answer cites its passages.

Importing this package loads no model and no heavy library; see :mod:`rag.api`.
"""

from rag.api import Pipeline, open_store, sample_articles_dir
from rag.errors import BadInput, EmptyStore, ModelUnavailable, NotFound, RagError, StoreUnavailable
from rag.settings import Settings
from rag.types import Answer, Article, ArticleMeta, Chunk, Citation, Filters, Passage

__all__ = [
    "Answer",
    "Article",
    "ArticleMeta",
    "BadInput",
    "Chunk",
    "Citation",
    "EmptyStore",
    "Filters",
    "ModelUnavailable",
    "NotFound",
    "Passage",
    "Pipeline",
    "RagError",
    "Settings",
    "StoreUnavailable",
    "open_store",
    "sample_articles_dir",
]
