"""The store's article records as one process sees them, and how that view keeps up with
writes by other processes (several `rag serve` over one Chroma server, or a server and
`rag index` on one folder).

Retrieval admits a chunk only when its article's record holds the text the chunk was cut
from (:class:`RecordHashes` is that map, in memory so a query does not read every record).
Chroma has no change feed, so the map is re-read whole, and the differences between two
reads are the articles another process added, changed or removed: :func:`sync_keyword`
then makes this process's keyword index hold exactly those articles' chunks as Chroma does.

What another process's write looks like here, once it has returned:
- dense and keyword *hits*: at once. Chroma answers every query itself; a removed article's
  chunks are gone; chunks the view does not admit (a new article, a changed one) make retrieval
  read those articles' records live (:meth:`RecordHashes.confirm`, each answer trusted
  ``CONFIRMED`` s), so an update never hides its article until the next refresh;
- the keyword index (BM25: new chunks found by keyword, document frequencies) and the keyword
  side of filtered searches: within the bound below, plus the sync of the changed articles.

The bound, with ``ttl`` = the ``refresh_seconds`` setting: an answer never uses a view older
than ``max(ttl, 40 x the time one read of every record takes)``. A query that finds the view
older than that reads it again (and syncs the keyword index) before answering; one that finds
it older than half of it answers at once and refreshes in the background; a server
(:meth:`RecordHashes.keep_fresh`) refreshes on that schedule without waiting for queries, so
its queries never wait and its keyword index catches up while nobody asks. This process's own
writes show at once (``clear``). What it leaves out: chunks an interrupted writer left without
a record sit in other processes' keyword indexes until they restart (never shown; the next
run of that writer removes them); while this process itself writes, the sync waits for it.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rag.types import NO_META, ArticleMeta

if TYPE_CHECKING:
    from index.keyword import KeywordIndex
    from index.store import ChromaStore

COST_FACTOR = 40  # the interval is at least 40x one read: refreshing (every half interval) stays under 5% of a core
CONFIRMED = 0.25  # seconds a live record lookup (confirm) is trusted
KEEPER_TICK = 0.5  # the keeper thread looks at least this often whether the interpreter is shutting down


class RecordHashes:
    """Which article text each source's record holds now (its content hash), with the records'
    metadata, kept in memory and refreshed as the module docstring says.

    With a ``keyword`` index, the articles whose records differ from the previous read get their
    chunks synced into it (:func:`sync_keyword`) before the new view is put in use, holding
    ``writing`` (the lock this process's own writes hold; waited for 0.5 s at most, else the
    same articles are synced after the next read).
    """

    def __init__(
        self,
        store: ChromaStore,
        ttl: float,
        keyword: KeywordIndex | None = None,
        writing: threading.RLock | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store  # index.ChromaStore (anything with articles(), and chunk reads for the sync)
        self._ttl = ttl
        self._keyword = keyword  # index.keyword.KeywordIndex
        self._writing = writing or threading.RLock()
        self._clock = clock
        self._lock = threading.Lock()  # the fields below
        self._reading = threading.Lock()  # one read of the records at a time
        self._map: dict[str, str] | None = None
        self._metas: dict[str, ArticleMeta] = {}  # read together with _map (keyword filters use it)
        self._at = 0.0  # when the read that made _map began
        self._cost = 0.0  # how long the last read took
        self._epoch = 0  # bumped by clear(): a read that began before it must not be put in use
        self._seen: dict[str, str] | None = None  # the read the keyword index was last brought up to date with
        self._confirmed: dict[str, tuple[str | None, float]] = {}  # source -> (live record hash, when read)
        self._thread: threading.Thread | None = None
        self._keeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False

    # ----- reading
    def interval(self) -> float:
        """The staleness bound in seconds (see the module docstring)."""
        return max(self._ttl, COST_FACTOR * self._cost)

    def age(self) -> float | None:
        """Seconds since the read behind the view in use began (None: nothing read yet)."""
        with self._lock:
            return None if self._map is None else self._clock() - self._at

    def current(self) -> dict[str, str]:
        with self._lock:
            view = self._map
            age = self._clock() - self._at
            interval = self.interval()
            # Read before answering on first use, after our own write, once the view is older than
            # the bound, and while the store looked empty (that read is cheap).
            if view is not None and age <= interval and not (age > interval / 2 and not view):
                if age > interval / 2:
                    self._refresh_soon()
                return view
        return self._read_now()

    def confirm(self, sources: set[str]) -> dict[str, str | None]:
        """The view, with the records of ``sources`` read live: retrieval asks for the articles whose
        chunks disagree with the view (added or changed by another process since it was read), so an
        update never hides an article for the length of the bound. Each answer is kept ``CONFIRMED``
        seconds, so chunks that never match (a killed writer's) cost a lookup only that often."""
        view = self.current()
        now = self._clock()
        with self._lock:
            known = {s: h for s, (h, at) in self._confirmed.items() if now - at <= CONFIRMED}
        sources = set(sources)
        known = {s: h for s, h in known.items() if s in sources}
        wanted = sorted(sources - known.keys())
        live: dict[str, str | None] = {}
        for source in wanted:
            article = self._store.article(source)
            live[source] = article.content_hash if article is not None else None
        if live:
            with self._lock:
                self._confirmed.update((s, (h, now)) for s, h in live.items())
        return {**view, **known, **live}  # None: no record, nothing matches

    def metas(self) -> dict[str, ArticleMeta]:
        """Each complete record's metadata, from the same read as :meth:`current`."""
        self.current()
        return self._metas

    def empty(self) -> bool:
        return not self.current()

    def clear(self) -> None:
        """This process wrote: read again before the next answer."""
        with self._lock:
            self._map = None
            self._confirmed = {}
            self._epoch += 1

    def _read_now(self) -> dict[str, str]:
        with self._reading:
            while True:
                with self._lock:  # another thread may have read while this one waited
                    if self._map is not None and self._clock() - self._at <= self.interval() / 2:
                        return self._map
                if self._update():
                    with self._lock:
                        if self._map is not None:
                            return self._map

    def _update(self) -> bool:
        """Read every record, let the dependents catch up, put the view in use (the caller holds
        ``_reading``). False when a clear() came in meanwhile: that read may predate the write."""
        with self._lock:
            epoch = self._epoch
        started = self._clock()
        infos = self._store.articles()
        hashes = {s: a.content_hash for s, a in infos.items()}
        metas = {s: getattr(a, "meta", NO_META) for s, a in infos.items()}
        cost = self._clock() - started
        self._catch_up(hashes)
        with self._lock:
            self._cost = cost
            if epoch != self._epoch:
                return False
            self._map, self._metas, self._at = hashes, metas, started
            self._confirmed = {s: (h, at) for s, (h, at) in self._confirmed.items() if at > started}
            return True

    def _catch_up(self, hashes: dict[str, str]) -> None:
        seen = self._seen
        if seen is not None and self._keyword is not None:
            changed = {s for s in seen.keys() | hashes.keys() if seen.get(s) != hashes.get(s)}
            if changed:
                if not self._writing.acquire(timeout=0.5):  # this process is writing: after the next read
                    return
                try:
                    sync_keyword(self._store, self._keyword, changed)
                except Exception:  # noqa: BLE001 - the store failed: synced after the next read
                    return
                finally:
                    self._writing.release()
        self._seen = hashes  # the first read is the baseline: the keyword index was built from the store

    # ----- in the background
    def _refresh_soon(self) -> None:
        """Start a background refresh unless one is under way or the keeper will do it (holds _lock)."""
        if self._closed or (self._keeper is not None and self._keeper.is_alive()):
            return
        if self._thread is None or not self._thread.is_alive():
            # Not a daemon: a daemon thread still inside Chroma's native code while the
            # interpreter finalizes crashed the process at exit (exit 139, issue 16).
            # Python joins this one before finalizing; close() joins it earlier.
            self._thread = threading.Thread(target=self.refresh, name="record-hashes", daemon=False)
            self._thread.start()

    def refresh(self) -> bool:
        """One background read; False when the store failed (queries report that themselves)."""
        if not self._reading.acquire(blocking=False):
            return True  # a read is under way
        try:
            self._update()
        except Exception:  # noqa: BLE001 - the store is down
            return False
        finally:
            self._reading.release()
        return True

    def due_in(self) -> float:
        """Seconds until the view is due a refresh (0 or less: now)."""
        with self._lock:
            if self._map is None:
                return 0.0
            return self.interval() / 2 - (self._clock() - self._at)

    def keep_fresh(self) -> None:
        """Refresh every half interval from a thread of its own, queries or not (servers call this).
        The thread ends with :meth:`close`, when this object is dropped, or when the main thread has
        ended (the interpreter is shutting down)."""
        with self._lock:
            if self._closed or (self._keeper is not None and self._keeper.is_alive()):
                return
            self._keeper = threading.Thread(
                target=_keep, args=(weakref.ref(self), self._stop), name="record-keeper", daemon=False
            )
            self._keeper.start()

    def close(self) -> None:
        """Start no more refreshes and wait for the one under way (a bounded store read)."""
        with self._lock:
            self._closed = True
            threads = [t for t in (self._thread, self._keeper) if t is not None]
        self._stop.set()
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()


def _keep(ref: weakref.ref[RecordHashes], stop: threading.Event) -> None:
    """The keeper's loop; it holds the RecordHashes only while refreshing, so dropping it ends the loop."""
    while not stop.is_set() and threading.main_thread().is_alive():
        hashes = ref()
        if hashes is None:
            return
        wait = hashes.due_in()
        if wait <= 0:
            # After a failed read, try again a tick later rather than in a tight loop.
            wait = hashes.due_in() if hashes.refresh() else KEEPER_TICK
        del hashes
        stop.wait(min(max(wait, 0.02), KEEPER_TICK))


def sync_keyword(store: ChromaStore, keyword: KeywordIndex, sources: Iterable[str]) -> tuple[int, int]:
    """Make ``keyword`` (an :class:`index.keyword.KeywordIndex`) hold exactly the chunks Chroma
    holds for ``sources``: (added, removed). The caller keeps its own writes out meanwhile."""
    sources = set(sources)
    in_chroma = store.chunk_ids_for(sorted(sources))
    in_keyword = keyword.live_ids_for_sources(sources)
    extra = in_keyword - in_chroma
    missing = sorted(in_chroma - in_keyword)
    keyword.remove(extra)
    for i in range(0, len(missing), 1000):
        got = store.get_chunks(missing[i : i + 1000])
        keyword.add((c.id, c.source, c.text) for c, _ in got.values())
    return len(missing), len(extra)
