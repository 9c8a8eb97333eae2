"""Near-duplicate passages, found at index time: the copies of one agency paragraph, an
article and its update, the same text on two sites.

A passage's words (casefolded, punctuation dropped, numbers kept) are cut into overlapping
word 3-grams ("shingles"). Two passages are near-duplicates when the Jaccard similarity of
their shingle sets is at least :data:`JACCARD_THRESHOLD`. Finding the candidates without
comparing every pair is MinHash locality-sensitive hashing (datasketch's ``MinHash``):
:data:`BANDS` bands of :data:`ROWS` MinHash values each; a band's hash is stored on the chunk
as a Chroma scalar (``mh0`` … ``mh15``), so the candidates of a new chunk are one ``where``
lookup in the store, never a scan. Every candidate is then checked with the exact Jaccard
of the two texts, so MinHash decides only which pairs get looked at, not which are copies.
Measured against SimHash on a labelled set (``tests/dedup_pairs.py``, figures in
``docs/stories.md``).

What it leaves out: the same story *retold* in other words (two outlets' own reports of
one event share names and numbers but few word sequences) is not a near-duplicate here;
telling rewrites from articles on the same topic needs more than word overlap.

Grouping is incremental and label-stable: a new chunk joins the group of its most similar
stored copy (the group id is the id of the chunk that started it), otherwise it starts its
own. Removing an article removes its chunks only; the others keep their labels, so nothing
else changes, and a later copy still finds the group through any member that is left.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

GROUPING_VERSION = "dedup-1"  # bump when shingling or the threshold changes: every article is regrouped once
SHINGLE_WORDS = 3
JACCARD_THRESHOLD = 0.4  # chosen on the labelled set, see docs/stories.md
BANDS, ROWS = 16, 2  # P(candidate) = 1 - (1 - J**2)**16: .94 at J = .4, .99 at .5, .15 at .1
NUM_PERM = BANDS * ROWS
MINHASH_SCHEME = "affine32"  # datasketch 2.0's default, stated
BAND_KEYS = tuple(f"mh{i}" for i in range(BANDS))
SIMHASH_BITS = 64

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The words that shingles are made of: casefolded, punctuation and markup dropped,
    digits kept ("4,5 Millionen" -> "4", "5", "millionen", so a changed figure changes a few shingles)."""
    return _WORD.findall(text.casefold().replace("_", " "))


def shingles(text: str, n: int = SHINGLE_WORDS) -> frozenset[str]:
    """Overlapping word n-grams; a text shorter than n words is one shingle (empty text: none)."""
    w = words(text)
    if len(w) < n:
        return frozenset([" ".join(w)]) if w else frozenset()
    return frozenset(" ".join(w[i : i + n]) for i in range(len(w) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def minhash(items: frozenset[str], num_perm: int = NUM_PERM) -> np.ndarray:
    """datasketch's MinHash signature of a shingle set (``num_perm`` 32-bit values; fixed seed and
    permutation scheme, named so that a library default changing can never change stored keys)."""
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=1, scheme=MINHASH_SCHEME)
    m.update_batch([s.encode() for s in sorted(items)])
    return m.hashvalues


def band_keys(items: frozenset[str]) -> dict[str, int]:
    """The LSH band hashes of a shingle set, as Chroma metadata (``mh0`` … ``mh15``; {} for no shingles).

    A key is 52 bits of a hash of the band's MinHash values and :data:`GROUPING_VERSION`, so keys of
    an older grouping never match new ones, and the integer is exact in JSON too.
    """
    if not items:
        return {}
    values = minhash(items).astype("<u4")
    out = {}
    for i, key in enumerate(BAND_KEYS):
        digest = hashlib.blake2b(
            values[i * ROWS : (i + 1) * ROWS].tobytes(), digest_size=8, person=GROUPING_VERSION.encode()[:16]
        ).digest()
        out[key] = int.from_bytes(digest, "little") >> 12
    return out


def simhash(items: Iterable[str], bits: int = SIMHASH_BITS) -> int:
    """Charikar's SimHash of a shingle set (every shingle weighs 1): the method measured against
    MinHash (``tests/dedup_pairs.py``), kept beside it so both see the same shingles."""
    counts = np.zeros(bits, dtype=np.int64)
    for s in items:
        digest = hashlib.blake2b(s.encode(), digest_size=bits // 8).digest()
        counts += 2 * np.unpackbits(np.frombuffer(digest, dtype=np.uint8)).astype(np.int64) - 1
    return int("".join("1" if c > 0 else "0" for c in counts), 2)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass(frozen=True)
class Stored:
    """A chunk that matching compares new chunks with: a stored one sharing an LSH band with them,
    or one written earlier in the same run."""

    id: str
    source: str
    text: str
    group: str
    story: str
    bands: dict[str, int] = field(default_factory=dict)
    url: str = ""


@dataclass(frozen=True)
class Assigned:
    """A new chunk's grouping: its group, its article's story, and its band keys (all Chroma metadata)."""

    group: str
    story: str
    bands: dict[str, int]


def best_match(
    items: frozenset[str], source: str, candidates: Iterable[Stored], cache: dict[str, frozenset[str]] | None = None
) -> tuple[Stored, float] | None:
    """The most similar chunk of another article at or above the threshold (ties: the smallest group
    label, so the outcome does not depend on the order the store returned them in)."""
    cache = {} if cache is None else cache
    best: tuple[Stored, float] | None = None
    for c in candidates:
        if c.source == source:  # its own chunks (the older text of the same file) are not copies
            continue
        if c.id not in cache:
            cache[c.id] = shingles(c.text)
        score = jaccard(items, cache[c.id])
        if score >= JACCARD_THRESHOLD and (
            best is None or score > best[1] or (score == best[1] and c.group < best[0].group)
        ):
            best = (c, score)
    return best


def story_id(source: str) -> str:
    """The story an article starts when no other article shares a copy or its URL with it."""
    return "s-" + hashlib.sha256(source.encode()).hexdigest()[:16]


NewArticle = tuple[str, str, Sequence[tuple[str, str]]]  # (source, url, [(chunk id, chunk text), ...])


def assign(
    articles: Sequence[NewArticle],
    lookup: Callable[[dict[str, set[int]]], list[Stored]],
    by_url: Callable[[list[str]], dict[str, list[tuple[str, str]]]],
) -> dict[str, Assigned]:
    """Groups and stories for new chunks (chunk id -> :class:`Assigned`), in two store reads.

    ``articles`` in indexing order; ``lookup(wanted)`` gives the stored chunks sharing a band key
    with any of them (``wanted``: band key -> values), ``by_url(urls)`` the (source, story) of the
    stored articles carrying each URL. A chunk joins the group of its most similar copy in another
    article; an article joins the story of another article with its URL, else of its closest copy,
    else starts its own. Chunks earlier in ``articles`` count as stored for the later ones, so one
    run groups as the same articles indexed one by one, in that order, would.
    """
    sets = {cid: shingles(text) for _, _, chunks in articles for cid, text in chunks}
    bands = {cid: band_keys(s) for cid, s in sets.items()}
    wanted: dict[str, set[int]] = {}
    for b in bands.values():
        for key, value in b.items():
            wanted.setdefault(key, set()).add(value)
    pool: dict[tuple[str, int], list[Stored]] = {}
    for c in lookup(wanted) if wanted else []:
        for band in c.bands.items():
            pool.setdefault(band, []).append(c)
    url_stories = {url: [s for _, s in found if s] for url, found in by_url([u for _, u, _ in articles if u]).items()}
    out: dict[str, Assigned] = {}
    for source, url, chunks in articles:
        matches = {
            cid: best_match(
                sets[cid], source, {c.id: c for band in bands[cid].items() for c in pool.get(band, ())}.values(), sets
            )
            for cid, _ in chunks
        }
        found = sorted((m for m in matches.values() if m is not None and m[0].story), key=lambda m: (-m[1], m[0].story))
        story = min(url_stories.get(url, []), default="") if url else ""
        story = story or (found[0][0].story if found else "") or story_id(source)
        if url:
            url_stories.setdefault(url, []).append(story)
        for cid, text in chunks:
            match = matches[cid]
            out[cid] = Assigned(match[0].group if match else cid, story, bands[cid])
            mine = Stored(cid, source, text, out[cid].group, story, bands[cid], url)
            for band in bands[cid].items():
                pool.setdefault(band, []).append(mine)
    return out
