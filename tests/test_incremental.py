"""Incremental indexing: unchanged articles are not re-embedded, changed ones replace
their chunks, removed ones disappear (Chroma and the keyword index alike)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLE_SOURCES, CountingEmbedder, write_articles

from index.keyword import KeywordIndex
from rag.api import Pipeline
from rag.errors import NotFound, StoreUnavailable

CHANGED = "004_7f32bc9d79f56e77.txt"
OLD_SENTENCE = "Das Gefährt könne bis zu zehn Raketen mit Nuklearsprengköpfen tragen und abfeuern."
NEW_SENTENCE = "Das Gefährt könne bis zu zwölf Marschflugkörper mit Pinguinwappen tragen und abfeuern."


def ids_of(pipeline: Pipeline, source: str) -> tuple[set[str], set[str]]:
    """(chunk ids in Chroma, chunk ids in the keyword index) of one article."""
    return pipeline.store.chunk_ids(source), pipeline.keyword.ids_for_source(source)


def assert_consistent(pipeline: Pipeline) -> None:
    """Chroma and the keyword index (also as persisted on disk) hold the same chunks, and
    each article record counts exactly the chunks it has."""
    in_chroma = pipeline.store.chunk_ids()
    assert pipeline.keyword.ids() == in_chroma
    assert KeywordIndex(pipeline._keyword_path()).ids() == in_chroma
    infos = pipeline.sources()
    assert sum(i.chunks for i in infos) == len(in_chroma)
    for info in infos:
        assert len(pipeline.store.chunk_ids(info.source)) == info.chunks


def test_reindex_embeds_nothing(settings, counting_fake: CountingEmbedder) -> None:
    first = Pipeline(settings, embedder=counting_fake).index()
    assert sorted(first.added) == SAMPLE_SOURCES and first.chunks > 0
    assert len(counting_fake.passages) == first.chunks

    again = CountingEmbedder(counting_fake.inner)
    report = Pipeline(settings, embedder=again).index()  # a new process, same store
    assert sorted(report.unchanged) == SAMPLE_SOURCES
    assert (report.added, report.updated, report.removed, report.chunks) == ([], [], [], 0)
    assert again.passages == []
    assert_consistent(Pipeline(settings))


def test_changed_file_replaces_its_chunks(settings, sample_copy: Path, counting_fake: CountingEmbedder) -> None:
    pipeline = Pipeline(settings, embedder=counting_fake)
    pipeline.index([sample_copy])
    old_chroma, old_keyword = ids_of(pipeline, CHANGED)
    assert old_chroma and old_chroma == old_keyword
    others = {s: ids_of(pipeline, s)[0] for s in SAMPLE_SOURCES if s != CHANGED}

    path = sample_copy / CHANGED
    text = path.read_text(encoding="utf-8")
    assert OLD_SENTENCE in text
    path.write_text(text.replace(OLD_SENTENCE, NEW_SENTENCE), encoding="utf-8")

    counting_fake.passages.clear()
    report = Pipeline(settings, embedder=counting_fake).index([sample_copy])
    assert report.updated == [CHANGED] and report.added == []
    assert sorted(report.unchanged) == sorted(others)
    assert any(NEW_SENTENCE in t for t in counting_fake.passages)
    assert len(counting_fake.passages) == report.chunks  # only the changed article was embedded

    fresh = Pipeline(settings)
    new_chroma, new_keyword = ids_of(fresh, CHANGED)
    assert new_chroma == new_keyword and new_chroma
    assert old_chroma - new_chroma, "the changed chunk must get a new id"
    assert not (old_chroma - new_chroma) & fresh.store.chunk_ids()  # stale ids gone from Chroma
    assert not (old_chroma - new_chroma) & fresh.keyword.ids()  # ... and from the keyword index
    assert {s: ids_of(fresh, s)[0] for s in others} == others  # the other articles untouched
    article = fresh.article(CHANGED)
    assert NEW_SENTENCE in article.text and OLD_SENTENCE not in article.text
    assert_consistent(fresh)

    top = fresh.retrieve("Pinguinwappen Marschflugkörper", k=1)[0]
    assert top.source == CHANGED and "Pinguinwappen" in top.text
    assert fresh.keyword.search("Nuklearsprengköpfen", 5) == []  # the old wording is not findable any more


def test_prune_removes_articles_whose_files_are_gone(settings, sample_copy: Path) -> None:
    pipeline = Pipeline(settings)
    pipeline.index([sample_copy])
    gone = SAMPLE_SOURCES[1]
    chroma_ids, keyword_ids = ids_of(pipeline, gone)
    (sample_copy / gone).unlink()

    kept = Pipeline(settings).index([sample_copy])  # without --prune the article stays
    assert kept.removed == [] and gone in {i.source for i in Pipeline(settings).sources()}

    report = Pipeline(settings).index([sample_copy], prune=True)
    assert report.removed == [gone]
    fresh = Pipeline(settings)
    assert gone not in {i.source for i in fresh.sources()}
    assert not chroma_ids & fresh.store.chunk_ids()
    assert not keyword_ids & fresh.keyword.ids()
    assert_consistent(fresh)


def test_prune_leaves_articles_from_other_folders(settings, sample_copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "eigen.txt").write_text("Eine eigene Meldung über den Stadtrat von Kassel und seinen Haushalt.\n")
    Pipeline(settings).index([sample_copy, other])
    report = Pipeline(settings).index([sample_copy], prune=True)
    assert report.removed == []
    assert "eigen.txt" in {i.source for i in Pipeline(settings).sources()}


def test_remove(settings) -> None:
    pipeline = Pipeline(settings)
    pipeline.index()
    source = SAMPLE_SOURCES[0]
    chroma_ids, keyword_ids = ids_of(pipeline, source)
    assert chroma_ids
    pipeline.remove(source)
    fresh = Pipeline(settings)
    assert source not in {i.source for i in fresh.sources()}
    assert not chroma_ids & fresh.store.chunk_ids() and not keyword_ids & fresh.keyword.ids()
    assert all(p.source != source for p in fresh.retrieve("Wladiwostok Eisenbahnkilometer Sonderzug", k=10))
    assert_consistent(fresh)
    with pytest.raises(NotFound):
        fresh.remove(source)


def test_keyword_index_is_reconciled_with_chroma(settings) -> None:
    """Chunks written by a run that died before the keyword index saw them are added on open, orphans dropped."""
    pipeline = Pipeline(settings)
    pipeline.index()
    all_ids = pipeline.store.chunk_ids()
    lost = sorted(all_ids)[:3]
    pipeline.keyword.remove(lost)
    pipeline.keyword.add([("orphan-id", "nowhere.txt", "verwaiste Zeile")])
    assert pipeline.keyword.ids() != all_ids

    fresh = Pipeline(settings)
    fresh.retrieve("Kim", k=1)  # the first use reconciles
    assert fresh.keyword.ids() == all_ids
    assert_consistent(fresh)


class FailingStore:
    """The real store, except that writing article records fails from the ``fail_at``-th call on."""

    def __init__(self, inner, fail_at: int) -> None:
        self._inner = inner
        self.calls = 0
        self.fail_at = fail_at

    def put_articles(self, items) -> None:
        self.calls += 1
        if self.calls >= self.fail_at:
            raise StoreUnavailable("The Chroma store at test failed: disk full.")
        self._inner.put_articles(items)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def test_a_write_failure_stops_the_run_and_the_next_run_completes(
    settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store error in the middle of a run reaches the caller (no silent loss), the groups
    written before it are complete, and a rerun finishes the job."""
    from index import pipeline as index_pipeline

    monkeypatch.setattr(index_pipeline, "GROUP_CHUNKS", 8)  # several groups from 40 small articles
    folder = tmp_path / "many"
    write_articles(folder, 40)
    pipeline = Pipeline(settings)
    real = pipeline.store
    failing = FailingStore(real, fail_at=2)
    pipeline.indexer.store = failing
    with pytest.raises(StoreUnavailable, match="disk full"):
        pipeline.index([folder])
    assert failing.calls == 2  # the run stopped at the failure: nothing written after it
    complete = {i.source for i in pipeline.sources()}
    assert 0 < len(complete) < 40  # the first group's records, and only those
    pipeline.indexer.store = real
    report = pipeline.index([folder])
    assert len(report.added) == 40 - len(complete) and len(report.unchanged) == len(complete)
    assert_consistent(pipeline)


class Clock:
    """A clock the test moves (the refresh rules are about the view's age)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_record_hashes_are_refreshed_within_the_bound(settings, sample_copy: Path) -> None:
    """Retrieval's consistency check reads the records from memory. Another process's update
    shows at once when the view is older than the bound (ttl), after a background refresh when
    it is older than half of it, not before; this process's own writes at once (``clear``)."""
    import time

    from index.records import RecordHashes

    clock = Clock()
    pipeline = Pipeline(settings)
    hashes = RecordHashes(pipeline.store, ttl=10, clock=clock)
    assert hashes.empty()
    pipeline.index([sample_copy])
    clock.now += 4
    assert hashes.empty()  # read 4 s ago, kept: the write was another "process's"
    clock.now += 2
    assert not hashes.empty()  # an empty view is read again once older than half the bound (cheap)
    before = pipeline.store.articles()[CHANGED].content_hash
    assert hashes.current()[CHANGED] == before and "no-such-article.txt" not in hashes.current()

    path = sample_copy / CHANGED
    path.write_text(path.read_text(encoding="utf-8").replace(OLD_SENTENCE, NEW_SENTENCE), encoding="utf-8")
    Pipeline(settings).index([sample_copy])  # another writer on the same store
    after = pipeline.store.articles()[CHANGED].content_hash
    assert after != before
    clock.now += 4
    assert hashes.current()[CHANGED] == before  # younger than half the bound: the map in memory
    clock.now += 2
    assert hashes.current()[CHANGED] == before  # older than half: answers at once, refreshes behind
    deadline = time.monotonic() + 30
    while hashes.current()[CHANGED] != after:
        assert time.monotonic() < deadline, "the background refresh never landed"
        time.sleep(0.05)

    path.write_text(path.read_text(encoding="utf-8").replace(NEW_SENTENCE, OLD_SENTENCE), encoding="utf-8")
    Pipeline(settings).index([sample_copy])
    clock.now += 10.5
    assert hashes.current()[CHANGED] == before  # older than the bound: read before answering
    hashes.close()

    cached = RecordHashes(pipeline.store, ttl=3600, clock=clock)
    assert cached.current()[CHANGED] == before
    path.write_text(path.read_text(encoding="utf-8").replace(OLD_SENTENCE, NEW_SENTENCE), encoding="utf-8")
    Pipeline(settings).index([sample_copy])
    assert cached.current()[CHANGED] == before
    cached.clear()  # what the pipeline does after its own writes
    assert cached.current()[CHANGED] == after


def test_background_refresh_is_joined_on_close() -> None:
    """The refresh thread is not a daemon (a daemon inside Chroma's native code while the
    interpreter finalizes crashed the process at exit, issue 16), close() waits for it,
    and a closed map starts no new refresh."""
    import threading
    from types import SimpleNamespace

    from index.records import RecordHashes

    release = threading.Event()

    class SlowStore:  # a store whose record read blocks until released
        reads = 0

        def articles(self) -> dict:
            SlowStore.reads += 1
            if SlowStore.reads > 1:
                release.wait(10)
            return {"a.txt": SimpleNamespace(content_hash="hash")}

    clock = Clock()
    hashes = RecordHashes(SlowStore(), ttl=10, clock=clock)
    hashes.current()  # first read: inline
    clock.now += 6
    hashes.current()  # older than half the bound: starts a refresh, which blocks
    refreshers = [t for t in threading.enumerate() if t.name == "record-hashes"]
    assert len(refreshers) == 1 and not refreshers[0].daemon and refreshers[0].is_alive()
    closer = threading.Thread(target=hashes.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # close() waits for the refresh under way
    release.set()
    closer.join(10)
    assert not closer.is_alive() and not refreshers[0].is_alive()
    hashes.current()
    assert not any(t.name == "record-hashes" and t.is_alive() for t in threading.enumerate())
