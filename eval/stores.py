"""Stores for evaluation: the same :class:`rag.Pipeline` users get, over a store of the
dataset's own corpus, kept in the user cache so repeated runs do not embed again.

Indexing is the product's incremental indexer: re-indexing an unchanged corpus is a
no-op, so :func:`ensure_indexed` is cheap after the first run. The gold set's corpus
is the sample articles (``Pipeline.index()``); a benchmark's corpus goes through
``Indexer.index_texts``. Each corpus gets its own store folder, never the user's store,
so articles indexed by hand cannot disturb the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformdirs import user_cache_dir

from eval.datasets import Dataset
from rag import Pipeline, open_store
from rag.settings import APP_NAME, Settings

if TYPE_CHECKING:
    from tqdm import tqdm

    from index import IndexReport


def default_store_dir(dataset: Dataset) -> Path:
    return Path(user_cache_dir(APP_NAME)) / "eval" / (dataset.corpus_id or dataset.name)


def open_pipeline(
    dataset: Dataset, store: str | Path | None = None, *, settings: Settings | None = None, **overrides: Any
) -> Pipeline:
    """A pipeline over the dataset's store (``store`` or the cache folder); ``overrides``
    are Settings fields, e.g. ``retrieval="dense"``."""
    where = Path(store).expanduser() if store is not None else default_store_dir(dataset)
    return open_store(where, settings=settings, **overrides)


def ensure_indexed(pipeline: Pipeline, dataset: Dataset, *, progress: bool = False) -> dict:
    """Index the dataset's corpus into the pipeline's store (a no-op when it is there).

    Returns the report of this run, and under ``"first"`` the report of the run that
    embedded the corpus (kept beside the store), so indexing time stays reportable
    after the store is cached.
    """
    report = _index(pipeline, dataset, progress).to_json()
    saved = _report_path(pipeline)
    if report["chunks"] and saved is not None:
        saved.write_text(json.dumps(report, indent=1), encoding="utf-8")
    first = json.loads(saved.read_text(encoding="utf-8")) if saved is not None and saved.is_file() else None
    return {**report, "first": first}


def _report_path(pipeline: Pipeline) -> Path | None:
    if pipeline.settings.chroma_url:
        return None
    return pipeline.settings.store / f"eval-index-report-{pipeline.fingerprint}.json"


def _index(pipeline: Pipeline, dataset: Dataset, progress: bool) -> IndexReport:
    from index.load import LoadedText

    bar = _bar(f"indexing {dataset.corpus_id or dataset.name}", len(dataset.corpus) or 5) if progress else None
    callback = (lambda done, total, source: bar.update(done - bar.n)) if bar is not None else None
    try:
        if not dataset.corpus:
            return pipeline.index(progress=callback)
        texts = [
            LoadedText(source=c.source, root="", text=c.text, kind="text", title_hint=c.title) for c in dataset.corpus
        ]
        return pipeline.index_texts(texts, progress=callback)
    finally:
        if bar is not None:
            bar.close()


def _bar(desc: str, total: int) -> tqdm:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="doc", leave=False)
