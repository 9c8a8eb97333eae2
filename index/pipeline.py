"""Incremental indexing: files -> load -> clean -> chunk -> embed -> write.

An article is unchanged when its stored record carries the same content hash (cleaned
text + title + index fingerprint): nothing is embedded again. A changed article gets
its new chunks written first, then its stale chunks deleted, then its record updated
last; a run killed at any point leaves the store usable, and the next run finishes the
job with no duplicates (chunk ids are content hashes, so re-writing is idempotent).

The keyword index is checked against Chroma when the indexer opens (``reconcile``), so
chunks written by a run that died before updating it are added, and orphans removed.

Metadata (outlet, URL, author, dates) is not part of the content hash: each record keeps a
separate metadata hash (with :data:`index.meta.METADATA_VERSION`). When only that differs,
a re-index rewrites the metadata on the article's chunks and record and embeds nothing
(``metadata_only`` in the report). A changed *title* still counts as a changed article.

Every chunk written gets its near-duplicate group and its article's story (:mod:`index.dedup`)
from the chunks already stored and those written before it in the same run; a metadata-only
rewrite regroups the article's chunks too (how a store indexed before grouping gets grouped).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from index.chunk import Chunker
from index.clean import clean_article
from index.dedup import Assigned, assign, story_id
from index.embed import Embedder, embed_in_batches
from index.keyword import KeywordIndex
from index.load import LoadedText, LoadFailure, SourceFile, discover, read_file
from index.store import ChromaStore, meta_hash
from rag.errors import NotFound
from rag.types import Article, Chunk

Progress = Callable[[int, int, str], None]  # (done, total, current source)
GROUP_CHUNKS = 256  # chunks embedded together across articles (batching is what makes embedding fast)


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[LoadFailure] = field(default_factory=list)
    metadata_only: list[str] = field(default_factory=list)  # also in updated: new metadata, same text, no embedding
    warnings: list[LoadFailure] = field(default_factory=list)  # metadata ignored (the article was indexed)
    chunks: int = 0  # chunks embedded and written in this run
    seconds: float = 0.0
    stages: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("load", "clean", "chunk", "embed", "write"), 0.0)
    )

    def summary(self) -> str:
        updated = f"{len(self.updated)} updated" + (
            f" ({len(self.metadata_only)} metadata only)" if self.metadata_only else ""
        )
        return (
            f"{len(self.added)} added, {updated}, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed, {len(self.failed)} failed; {self.chunks} chunks embedded "
            f"in {self.seconds:.1f} s"
        )

    def to_json(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": [{"source": f.source, "reason": f.reason} for f in self.failed],
            "metadata_only": self.metadata_only,
            "warnings": [{"source": w.source, "reason": w.reason} for w in self.warnings],
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "stages": {k: round(v, 3) for k, v in self.stages.items()},
        }


@dataclass
class _Prepared:
    article: Article
    chunks: list[Chunk]
    is_update: bool


class Indexer:
    def __init__(
        self,
        store: ChromaStore,
        keyword: KeywordIndex,
        embedder: Embedder,
        chunker: Chunker,
        fingerprint: str,
        batch_size: int = 32,
    ) -> None:
        self.store = store
        self.keyword = keyword
        self.embedder = embedder
        self.chunker = chunker
        self.fingerprint = fingerprint
        self.batch_size = batch_size

    # ----- consistency
    def reconcile(self) -> tuple[int, int]:
        """Make the keyword index hold exactly the chunks Chroma holds: (added, removed)."""
        in_chroma = self.store.chunk_ids()
        in_keyword = self.keyword.ids()
        missing = sorted(in_chroma - in_keyword)
        orphans = in_keyword - in_chroma
        self.keyword.remove(orphans)
        for i in range(0, len(missing), 1000):
            got = self.store.get_chunks(missing[i : i + 1000])
            self.keyword.add((c.id, c.source, c.text) for c, _ in got.values())
        return len(missing), len(orphans)

    # ----- indexing
    def index_paths(self, paths: Iterable[Path], prune: bool = False, progress: Progress | None = None) -> IndexReport:
        started = time.perf_counter()
        files, failures = discover(list(paths))
        report = IndexReport(failed=list(failures))
        known = self.store.articles()

        def loader() -> Iterable[LoadedText | LoadFailure]:
            for file in files:
                t = time.perf_counter()
                loaded = read_file(file)
                report.stages["load"] += time.perf_counter() - t
                yield loaded

        self._index_loaded(loader(), len(files), known, report, progress)
        if prune:
            self._prune(paths, files, known, report)
        report.seconds = time.perf_counter() - started
        return report

    def index_texts(self, items: Iterable[LoadedText], progress: Progress | None = None) -> IndexReport:
        """Index already-decoded documents (uploads, benchmarks)."""
        started = time.perf_counter()
        items = list(items)
        report = IndexReport()
        self._index_loaded(items, len(items), self.store.articles(), report, progress)
        report.seconds = time.perf_counter() - started
        return report

    def _index_loaded(
        self,
        loaded: Iterable[LoadedText | LoadFailure],
        total: int,
        known: dict,
        report: IndexReport,
        progress: Progress | None,
    ) -> None:
        group: list[_Prepared] = []
        pending = 0
        for done, item in enumerate(loaded, start=1):
            if isinstance(item, LoadFailure):
                report.failed.append(item)
            else:
                prepared = self._prepare(item, known, report)
                if prepared is not None:
                    group.append(prepared)
                    pending += len(prepared.chunks)
            if pending >= GROUP_CHUNKS:
                self._write_group(group, self._embed_group(group, report), report)
                group, pending = [], 0
            if progress:
                progress(done, total, getattr(item, "source", ""))
        if group:
            self._write_group(group, self._embed_group(group, report), report)

    def _prepare(self, loaded: LoadedText, known: dict, report: IndexReport) -> _Prepared | None:
        t = time.perf_counter()
        cleaned = clean_article(loaded.text, loaded.title_hint)
        report.stages["clean"] += time.perf_counter() - t
        report.warnings += [LoadFailure(loaded.source, w) for w in loaded.warnings]
        if len(cleaned.text.split()) < 3:
            report.failed.append(LoadFailure(loaded.source, "no article text left after removing boilerplate"))
            return None
        digest = hashlib.sha256(f"{self.fingerprint}\x00{cleaned.title}\x00{cleaned.text}".encode()).hexdigest()[:32]
        previous = known.get(loaded.source)
        article = Article(
            source=loaded.source,
            title=cleaned.title,
            text=cleaned.text,
            content_hash=digest,
            root=loaded.root,
            meta=loaded.meta,
        )
        if previous is not None and previous.content_hash == digest:
            if previous.meta_hash == meta_hash(article):
                report.unchanged.append(loaded.source)
            else:
                self._rewrite_meta(article, previous.chunks, report)
            return None
        t = time.perf_counter()
        chunks = [
            replace(c, meta=loaded.meta)
            for c in self.chunker.chunk(article.text, article.source, article.title, digest)
        ]
        report.stages["chunk"] += time.perf_counter() - t
        return _Prepared(article, chunks, is_update=previous is not None)

    def _rewrite_meta(self, article: Article, chunks: int, report: IndexReport) -> None:
        """Same text, new metadata: chunks first, then the record (as for any write), no embedding."""
        t = time.perf_counter()
        stored = sorted(
            self.store.get_chunks(sorted(self.store.chunk_ids(article.source))).values(), key=lambda got: got[0].index
        )
        grouping = self._grouping([(article, [c for c, _ in stored])])
        self.store.set_chunk_meta(
            [c.id for c, _ in stored], article.meta, {c.id: _fields(grouping[c.id]) for c, _ in stored}
        )
        self.store.put_articles(
            [(replace(article, story=_story_of(article, [c for c, _ in stored], grouping)), chunks)]
        )
        report.stages["write"] += time.perf_counter() - t
        report.updated.append(article.source)
        report.metadata_only.append(article.source)

    def _embed_group(self, group: list[_Prepared], report: IndexReport) -> np.ndarray:
        """Embed a group's chunks together (batching across articles is what makes embedding fast)."""
        t = time.perf_counter()
        vectors = embed_in_batches(self.embedder, [c.text for p in group for c in p.chunks], "passage", self.batch_size)
        report.stages["embed"] += time.perf_counter() - t
        return vectors

    def _write_group(self, group: list[_Prepared], vectors: np.ndarray, report: IndexReport) -> None:
        """Write an embedded group in a few store calls.

        Order per group: all chunks (Chroma, then keyword index), then the group's stale
        chunks deleted, then all article records last. Chroma's cost is per call (~45 ms
        locally, more over HTTP), so one call per group instead of several per article is
        what makes writing fast; a run killed in between leaves records that still match
        the chunks they point to, as before.
        """
        t = time.perf_counter()
        grouping = self._grouping([(p.article, p.chunks) for p in group])
        chunks = [replace(c, group=grouping[c.id].group, story=grouping[c.id].story) for p in group for c in p.chunks]
        hashes = [p.article.content_hash for p in group for _ in p.chunks]
        self.store.add_chunks(chunks, vectors, hashes, [grouping[c.id].bands for c in chunks])
        self.keyword.add((c.id, c.source, c.text) for c in chunks)
        sources = [p.article.source for p in group]
        new_ids = {c.id for c in chunks}
        stale = (self.store.chunk_ids_for(sources) | self.keyword.ids_for_sources(sources)) - new_ids
        if stale:
            self.store.delete_chunks(sorted(stale))
            self.keyword.remove(stale)
        self.store.put_articles(
            [(replace(p.article, story=_story_of(p.article, p.chunks, grouping)), len(p.chunks)) for p in group]
        )  # last: marks them complete
        for p in group:
            report.chunks += len(p.chunks)
            (report.updated if p.is_update else report.added).append(p.article.source)
        report.stages["write"] += time.perf_counter() - t

    def _grouping(self, articles: list[tuple[Article, list[Chunk]]]) -> dict[str, Assigned]:
        """Near-duplicate groups and stories of these articles' chunks (two store reads)."""
        return assign(
            [(a.source, a.meta.url, [(c.id, c.text) for c in chunks]) for a, chunks in articles],
            self.store.copy_candidates,
            self.store.stories_by_url,
        )

    # ----- removal
    def remove(self, source: str) -> None:
        known = self.store.articles()
        if source not in known and not self.store.chunk_ids(source):
            raise NotFound(f"No indexed article is called {source!r}. `rag sources` lists them.")
        self._remove(source)

    def _remove(self, source: str) -> None:
        self.store.delete_article(source)  # first: a half-removed article is never shown
        ids = self.store.chunk_ids(source) | self.keyword.ids_for_source(source)
        self.store.delete_chunks(sorted(ids))
        self.keyword.remove(ids)

    def _prune(self, paths: Iterable[Path], files: list[SourceFile], known: dict, report: IndexReport) -> None:
        roots = {str(Path(p).resolve()) for p in paths if Path(p).is_dir()}
        present = {(f.root, f.source) for f in files}
        for source, info in known.items():
            if info.root in roots and (info.root, source) not in present:
                self._remove(source)
                report.removed.append(source)


def _fields(assigned: Assigned) -> dict[str, str | int]:
    return {"group": assigned.group, "story": assigned.story, **assigned.bands}


def _story_of(article: Article, chunks: list[Chunk], grouping: dict[str, Assigned]) -> str:
    return grouping[chunks[0].id].story if chunks else story_id(article.source)
