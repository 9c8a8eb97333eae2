"""German-aware BM25 keyword index, persisted in SQLite and held in memory.

Analysis: lowercase words and numbers; hyphenated compounds also as their parts and
their joined form ("Kurzstrecken-Raketen" -> kurzstrecken, raketen,
kurzstreckenraketen); German and English stop words out; Snowball German stemming;
umlauts folded; a genitive -s after a vowel folded ("Nordkoreas" meets "Nordkorea").

The index is updated incrementally (add/remove), never rebuilt per query. The SQLite
file holds each chunk's terms; memory holds postings as numpy arrays built lazily.
Removed chunks are masked and compacted away once they are a third of the index.

A search can be limited to some articles (``sources``): the others' rows are masked before
the top k are taken, so a selective filter still gets k hits when k exist.

Several processes may share the file (two servers with one cache_dir): each keeps its own
memory, brought up to date from Chroma by :mod:`index.records`; a row another process deleted
first is still removed exactly (its terms are found in memory).
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from Stemmer import Stemmer

_WORD = re.compile(r"[^\W_]+(?:[-‐‑][^\W_]+)*", re.UNICODE)
_FOLD = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss", "é": "e", "è": "e", "á": "a", "à": "a"})

STOPWORDS = frozenset(
    """
    aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes auch auf aus bei
    bin bis bist da damit dann das dass dasselbe dazu daß dein deine dem den denn der des dessen deshalb die dies
    diese dieselbe diesem diesen dieser dieses doch dort du durch ein eine einem einen einer eines er es etwas euch
    euer eure für gegen gewesen hab habe haben hat hatte hatten hier hin hinter ich ihm ihn ihnen ihr ihre ihrem
    ihren ihrer ihres im in indem ins ist jede jedem jeden jeder jedes jene jenem jenen jener jenes jetzt kann kein
    keine keinem keinen keiner man manche mich mir mit muss musste nach nicht nichts noch nun nur ob oder ohne sehr
    sein seine seinem seinen seiner seines selbst sich sie sind so solche soll sollte sondern sonst über um und uns
    unser unsere unter vom von vor war waren warst was weg weil weiter welche welchem welchen welcher welches wenn
    wer werde werden wie wieder will wir wird wirst wo wollen wollte würde würden zu zum zur zwar zwischen
    wann warum wieso weshalb wieviel wie viele gibt gab geht ging
    a an and are as at be been but by can could did do does for from had has have how i if in into is it its many
    much of on or should so than that the their them then there these they this those to was were what when where
    which who whom whose why will with would you your
    """.split()
)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer:
    import Stemmer

    return Stemmer.Stemmer("german")


ANALYZER_VERSION = "a2"  # part of the keyword index file name: a changed analyzer rebuilds it from Chroma


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    stem = _stemmer().stemWord(word).translate(_FOLD)
    # Snowball keeps the genitive -s after a vowel (Nordkoreas, Chinas, Kanadas): fold it.
    if len(stem) >= 5 and stem.endswith("s") and stem[-2] in "aeiou":
        stem = stem[:-1]
    return stem


def analyze(text: str) -> list[str]:
    """Text -> index terms (see module docstring)."""
    terms: list[str] = []
    for match in _WORD.finditer(text.lower()):
        word = match.group()
        parts = re.split(r"[-‐‑]", word)
        if len(parts) > 1:
            joined = "".join(parts)
            terms.append(_stem(joined))
        for part in parts:
            if part and part not in STOPWORDS and (len(part) > 1 or part.isdigit()):
                terms.append(_stem(part))
    return terms


@dataclass(frozen=True)
class KeywordHit:
    id: str
    score: float


class KeywordIndex:
    """BM25 (k1=1.2, b=0.75) over chunk ids; thread-safe."""

    K1 = 1.2
    B = 0.75

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, source TEXT NOT NULL, terms TEXT NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS docs_source ON docs(source)")
        self._lock = threading.RLock()
        self._load()

    # ----- memory structures
    def _load(self) -> None:
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._lengths: list[int] = []
        self._alive: list[bool] = []
        self._postings: dict[str, list[tuple[int, int]]] = {}
        self._df: Counter[str] = Counter()
        self._total_len = 0
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._dead = 0
        self._rows_cache: tuple[np.ndarray, np.ndarray | None] | None = None
        self._source_rows: dict[str, list[int]] = {}  # article -> its rows (dead ones included)
        for doc_id, source, terms in self._db.execute("SELECT id, source, terms FROM docs ORDER BY rowid"):
            self._add_memory(doc_id, source, terms.split(" ") if terms else [])

    def _add_memory(self, doc_id: str, source: str, terms: list[str]) -> None:
        row = len(self._ids)
        self._ids.append(doc_id)
        self._row[doc_id] = row
        self._source_rows.setdefault(source, []).append(row)
        self._lengths.append(len(terms))
        self._alive.append(True)
        self._total_len += len(terms)
        for term, tf in Counter(terms).items():
            self._postings.setdefault(term, []).append((row, tf))
            self._df[term] += 1
            self._arrays.pop(term, None)

    def _remove_memory(self, doc_id: str, terms: list[str]) -> None:
        row = self._row.pop(doc_id)
        self._alive[row] = False
        self._rows_cache = None
        self._total_len -= self._lengths[row]
        self._dead += 1
        for term in set(terms):
            self._df[term] -= 1

    # ----- updates
    def add(self, docs: Iterable[tuple[str, str, str]]) -> None:
        """Add (id, source, text) docs; ids already present are left as they are."""
        with self._lock:
            fresh = []
            for doc_id, source, text in docs:
                if doc_id in self._row:
                    continue
                terms = analyze(text)
                fresh.append((doc_id, source, " ".join(terms)))
                self._add_memory(doc_id, source, terms)
            if fresh:  # one transaction: in autocommit mode each row would be its own commit
                with self._transaction():
                    self._db.executemany("INSERT OR REPLACE INTO docs (id, source, terms) VALUES (?, ?, ?)", fresh)

    def remove(self, ids: Iterable[str]) -> None:
        with self._lock:
            ids = [i for i in ids if i in self._row]
            gone = []
            for doc_id in ids:
                row = self._db.execute("SELECT terms FROM docs WHERE id = ?", (doc_id,)).fetchone()
                if row is None:  # another process sharing this file deleted it first
                    gone.append(doc_id)
                else:
                    self._remove_memory(doc_id, row[0].split(" ") if row[0] else [])
            for doc_id, terms in self._terms_from_postings(gone).items():
                self._remove_memory(doc_id, terms)
            if ids:
                with self._transaction():
                    self._db.executemany("DELETE FROM docs WHERE id = ?", [(i,) for i in ids])
            if self._dead > 1000 and self._dead > len(self._ids) / 3:
                self._load()  # compaction: rebuild memory from the live rows

    def _terms_from_postings(self, ids: list[str]) -> dict[str, list[str]]:
        """The distinct terms of rows whose SQLite row is gone, found in memory (one pass over
        every posting: slow on a large index, and only needed when processes share the file)."""
        rows = {self._row[i]: i for i in ids}
        found: dict[str, list[str]] = {i: [] for i in ids}
        if rows:
            for term, posting in self._postings.items():
                for row, _ in posting:
                    if row in rows:
                        found[rows[row]].append(term)
        return found

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._row)

    def ids_for_source(self, source: str) -> set[str]:
        return self.ids_for_sources([source])

    def ids_for_sources(self, sources: Iterable[str]) -> set[str]:
        sources = sorted(set(sources))
        out: set[str] = set()
        with self._lock:
            for i in range(0, len(sources), 500):
                part = sources[i : i + 500]
                marks = ",".join("?" * len(part))
                out.update(r[0] for r in self._db.execute(f"SELECT id FROM docs WHERE source IN ({marks})", part))
        return out

    def live_ids_for_sources(self, sources: Iterable[str]) -> set[str]:
        """Ids this index searches for ``sources`` (memory, not the file: another process
        sharing the file may have written rows this one has not loaded)."""
        with self._lock:
            return {self._ids[r] for s in set(sources) for r in self._source_rows.get(s, ()) if self._alive[r]}

    def __len__(self) -> int:
        return len(self._row)

    # ----- search
    def idf(self, term: str) -> float:
        n = len(self._row)
        df = self._df.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def coverage(self, query: str) -> float:
        """Share of the query's term weight that the corpus vocabulary knows (0..1).

        An English question over German text shares few terms with it: its keyword
        ranking is noise, and fusion should lean on the dense ranking instead.
        """
        terms = analyze(query)
        if not terms or not self._row:
            return 0.0
        unknown = self.idf("\x00never\x00")
        total = known = 0.0
        for term in terms:
            if self._df.get(term, 0) > 0:
                w = self.idf(term)
                known += w
                total += w
            else:
                total += unknown
        return known / total if total else 0.0

    def search(self, query: str, k: int, sources: set[str] | frozenset[str] | None = None) -> list[KeywordHit]:
        """The k best chunks for ``query``; with ``sources``, the k best of those articles' chunks."""
        with self._lock:
            n = len(self._ids)
            if not self._row or k <= 0 or (sources is not None and not sources):
                return []
            lengths, dead = self._row_arrays()
            avg = max(self._total_len / max(len(self._row), 1), 1.0)
            scores = np.zeros(n, dtype=np.float32)
            for term, qtf in Counter(analyze(query)).items():
                if self._df.get(term, 0) <= 0:
                    continue
                rows, tfs = self._array(term)
                denom = tfs + self.K1 * (1 - self.B + self.B * lengths[rows] / avg)
                scores[rows] += qtf * self.idf(term) * tfs * (self.K1 + 1) / denom
            if dead is not None:
                scores[dead] = 0
            if sources is not None:
                scores *= self._mask(sources, n)
            if k < n:  # the k best without sorting every row (most score 0)
                top = np.argpartition(-scores, k - 1)[:k]
                top = top[np.argsort(-scores[top], kind="stable")]
            else:
                top = np.argsort(-scores, kind="stable")
            return [KeywordHit(self._ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def _mask(self, sources: set[str] | frozenset[str], n: int) -> np.ndarray:
        """1 for the rows of ``sources``, 0 for every other row."""
        mask = np.zeros(n, dtype=np.float32)
        for source in sources:
            rows = self._source_rows.get(source)
            if rows:
                mask[rows] = 1.0
        return mask

    def _row_arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-row lengths and the removed rows' mask as arrays, rebuilt only after a change."""
        if self._rows_cache is None or len(self._rows_cache[0]) != len(self._lengths):
            dead = ~np.asarray(self._alive) if self._dead else None
            self._rows_cache = (np.asarray(self._lengths, dtype=np.float32), dead)
        return self._rows_cache

    def _array(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        cached = self._arrays.get(term)
        if cached is None:
            post = self._postings[term]
            cached = (
                np.fromiter((r for r, _ in post), dtype=np.int64, count=len(post)),
                np.fromiter((t for _, t in post), dtype=np.float32, count=len(post)),
            )
            self._arrays[term] = cached
        return cached

    def close(self) -> None:
        self._db.close()
