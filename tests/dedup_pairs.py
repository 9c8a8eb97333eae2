"""A labelled set of passage pairs for near-duplicate detection, and the measurement of
MinHash against SimHash on it (text only: no model, no store).

Passages are the cleaned texts of the news fixture (``tests/news_corpus.py``), copies of
them made the way agencies' texts are reused, and the 240 German XQuAD paragraphs.

Duplicate pairs (positive):
- the fixture's update: the Elbe level article and its later version (the first paragraph
  rewritten with new figures, the rest the same);
- for each of the other fixture articles, five copies of the kind a news archive holds:
  ``reprint`` (another outlet's dateline and footer lines), ``shortened`` (the last paragraph
  cut), ``new_lead`` (the first sentence replaced), ``update`` (every figure changed and a
  sentence added), ``local`` (a paragraph of local detail inserted); every pair among an
  article and its copies is a duplicate pair.

Not duplicates (negative): every other pair: fixture articles and their copies across
stories, all XQuAD paragraph pairs (480 of them pairs of paragraphs from the same Wikipedia article:
one topic, the same names), and fixture × XQuAD.

Reported apart: ``rewrites``, the pairs of the two stories that three outlets tell in their own
words (bridge, pool). They are the same story but not the same passage; which method flags
them is shown, and they count in neither precision nor recall.

``python -m tests.dedup_pairs`` prints the table in ``docs/stories.md``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from index.clean import clean_article
from index.dedup import (
    BAND_KEYS,
    JACCARD_THRESHOLD,
    MINHASH_SCHEME,
    NUM_PERM,
    band_keys,
    hamming,
    jaccard,
    minhash,
    shingles,
    simhash,
)
from index.load import SourceFile, read_file
from tests.news_corpus import BRIDGE, FLOOD, NEWS_DIR, POOL

XQUAD_DE = Path(__file__).resolve().parents[1] / "eval" / "data" / "xquad" / "xquad.de.json"
LEADS = (
    "Die Nachricht verbreitete sich am Morgen schnell in der Region.",
    "Was bislang bekannt ist, fasst dieser Bericht zusammen.",
)
LOCAL = (
    "Auch in den Nachbarorten wird darüber gesprochen. Der Ortsvorsteher kündigte an, die Bürger bei einer "
    "Versammlung am Donnerstag zu informieren."
)


@dataclass(frozen=True)
class Item:
    name: str  # "fixture/<source>", "fixture/<source>#<copy>", "xquad/<title>/<i>"
    text: str
    origin: str  # what it is a copy of (its own name for an original)


def fixture_texts() -> dict[str, str]:
    out = {}
    for path in sorted(NEWS_DIR.iterdir()):
        if ".meta." in path.name:
            continue
        loaded = read_file(SourceFile(path=path, root=str(NEWS_DIR), source=path.name))
        out[path.name] = clean_article(loaded.text, loaded.title_hint).text
    return out


def _sentences(paragraph: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", paragraph)


def _bump(match: re.Match) -> str:
    return str(int(match.group()) + 3)


def copies(text: str) -> dict[str, str]:
    """Five reused versions of an article, as agencies' texts are reused (deterministic)."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    first = _sentences(paragraphs[0])
    lead = LEADS[len(text) % len(LEADS)]
    return {
        "reprint": "\n\n".join(
            [
                "Stand: 14.03.2024 10:15 Uhr",
                "(dpa) " + paragraphs[0],
                *paragraphs[1:],
                "Quelle: dpa, Mitarbeit: Redaktion am Morgen",
            ]
        ),
        "shortened": "\n\n".join(
            paragraphs[:-1] if len(paragraphs) > 2 else paragraphs[:1] + [_sentences(paragraphs[1])[0]]
        ),
        "new_lead": "\n\n".join([" ".join([lead, *first[1:]]), *paragraphs[1:]]),
        "update": "\n\n".join(
            [re.sub(r"\d+", _bump, p) for p in paragraphs] + ["Die Angaben wurden am Abend aktualisiert."]
        ),
        "local": "\n\n".join([*paragraphs[:1], LOCAL, *paragraphs[1:]]),
    }


def xquad_paragraphs(path: Path = XQUAD_DE) -> list[Item]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [
        Item(f"xquad/{article['title']}/{i}", p["context"], f"xquad/{article['title']}/{i}")
        for article in data
        for i, p in enumerate(article["paragraphs"])
    ]


def labelled_items() -> list[Item]:
    texts = fixture_texts()
    items = []
    for source, text in texts.items():
        items.append(Item(f"fixture/{source}", text, f"fixture/{source}"))
        if source == FLOOD[1]:
            items[-1] = Item(f"fixture/{source}", text, f"fixture/{FLOOD[0]}")  # the update of FLOOD[0]
        elif len(text.split()) >= 30:
            items += [
                Item(f"fixture/{source}#{kind}", copy, f"fixture/{source}") for kind, copy in copies(text).items()
            ]
    return items + xquad_paragraphs()


def _story(name: str) -> str | None:
    source = name.removeprefix("fixture/").split("#")[0]
    for story in (BRIDGE, POOL):
        if source in story:
            return story[0]
    return None


@dataclass
class Pairs:
    positive: list[tuple[int, int]]
    negative: list[tuple[int, int]]
    rewrites: list[tuple[int, int]]
    same_topic: list[tuple[int, int]]  # negatives: XQuAD paragraphs of the same Wikipedia article


def pairs(items: list[Item]) -> Pairs:
    out = Pairs([], [], [], [])
    for i, j in itertools.combinations(range(len(items)), 2):
        a, b = items[i], items[j]
        if a.origin == b.origin:
            out.positive.append((i, j))
        elif _story(a.origin) is not None and _story(a.origin) == _story(b.origin) and "#" not in a.name + b.name:
            out.rewrites.append((i, j))
        else:
            out.negative.append((i, j))
            if a.name.startswith("xquad/") and a.name.rsplit("/", 1)[0] == b.name.rsplit("/", 1)[0]:
                out.same_topic.append((i, j))
    return out


@dataclass(frozen=True)
class Score:
    method: str
    tp: int
    fp: int
    fn: int
    rewrites: int  # rewrite pairs flagged
    rewrite_total: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def row(self) -> str:
        return (
            f"| {self.method} | {self.precision:.3f} | {self.recall:.3f} | {self.f1:.3f} | {self.tp} | {self.fp} | "
            f"{self.fn} | {self.rewrites}/{self.rewrite_total} |"
        )


def score(method: str, flag: Callable[[int, int], bool], p: Pairs) -> Score:
    tp = sum(flag(i, j) for i, j in p.positive)
    fp = sum(flag(i, j) for i, j in p.negative)
    return Score(method, tp, fp, len(p.positive) - tp, sum(flag(i, j) for i, j in p.rewrites), len(p.rewrites))


def measure() -> tuple[list[Score], dict[str, float]]:
    """The deployed MinHash configuration, MinHash's estimate alone, and SimHash at its best distance."""
    items = labelled_items()
    p = pairs(items)
    sets = [shingles(it.text) for it in items]
    exact = {}

    def jac(i: int, j: int) -> float:
        if (i, j) not in exact:
            exact[i, j] = jaccard(sets[i], sets[j])
        return exact[i, j]

    from datasketch import MinHash

    sigs = [MinHash(num_perm=128, seed=1, hashvalues=minhash(s, 128), scheme=MINHASH_SCHEME) for s in sets]
    bands = [band_keys(s) for s in sets]
    hashes = [simhash(s) for s in sets]

    def lsh(i: int, j: int) -> bool:
        return any(bands[i].get(k) == bands[j].get(k) is not None for k in BAND_KEYS) and jac(i, j) >= JACCARD_THRESHOLD

    scores = [
        score(
            f"MinHash LSH {len(BAND_KEYS)}x{NUM_PERM // len(BAND_KEYS)} + exact Jaccard >= {JACCARD_THRESHOLD} "
            f"(deployed)",
            lsh,
            p,
        ),
        score(
            f"MinHash estimate (128 perm) >= {JACCARD_THRESHOLD}",
            lambda i, j: sigs[i].jaccard(sigs[j]) >= JACCARD_THRESHOLD,
            p,
        ),
    ]
    best = max(
        (
            score(f"SimHash 64 bit, Hamming <= {d}", lambda i, j, d=d: hamming(hashes[i], hashes[j]) <= d, p)
            for d in range(0, 25)
        ),
        key=lambda s: (s.f1, -s.fp),
    )
    scores.append(best)
    lsh_candidates = sum(any(bands[i].get(k) == bands[j].get(k) is not None for k in BAND_KEYS) for i, j in p.negative)
    facts = {
        "items": len(items),
        "positive": len(p.positive),
        "negative": len(p.negative),
        "rewrites": len(p.rewrites),
        "same_topic": len(p.same_topic),
        "max_negative_jaccard": max(jac(i, j) for i, j in p.negative),
        "max_same_topic_jaccard": max(jac(i, j) for i, j in p.same_topic),
        "min_positive_jaccard": min(jac(i, j) for i, j in p.positive),
        "max_rewrite_jaccard": max(jac(i, j) for i, j in p.rewrites),
        "lsh_negative_candidates": lsh_candidates,
    }
    return scores, facts


def sweep() -> list[str]:
    """Precision and recall of each method over its threshold (the whole curve, not only the chosen point)."""
    items = labelled_items()
    p = pairs(items)
    sets = [shingles(it.text) for it in items]
    hashes = [simhash(s) for s in sets]
    cache: dict[tuple[int, int], float] = {}

    def jac(i: int, j: int) -> float:
        if (i, j) not in cache:
            cache[i, j] = jaccard(sets[i], sets[j])
        return cache[i, j]

    rows = []
    for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        s = score(f"Jaccard >= {t}", lambda i, j, t=t: jac(i, j) >= t, p)
        rows.append(f"| {s.method} | {s.precision:.3f} | {s.recall:.3f} | {s.fp} |")
    for d in (6, 10, 14, 17, 20, 24):
        s = score(f"SimHash Hamming <= {d}", lambda i, j, d=d: hamming(hashes[i], hashes[j]) <= d, p)
        rows.append(f"| {s.method} | {s.precision:.3f} | {s.recall:.3f} | {s.fp} |")
    return rows


def main() -> None:
    scores, facts = measure()
    print(
        f"{facts['items']} passages; {facts['positive']} duplicate pairs, {facts['negative']:,} others "
        f"({facts['same_topic']:,} same Wikipedia article), {facts['rewrites']} rewrite pairs"
    )
    print("| method | precision | recall | F1 | TP | FP | FN | rewrites flagged |")
    print("|---|---|---|---|---|---|---|---|")
    for s in scores:
        print(s.row())
    print(
        f"exact Jaccard: lowest duplicate pair {facts['min_positive_jaccard']:.3f}, highest other pair "
        f"{facts['max_negative_jaccard']:.3f} (same Wikipedia article {facts['max_same_topic_jaccard']:.3f}), "
        f"highest rewrite pair {facts['max_rewrite_jaccard']:.3f}; LSH candidates among the others: "
        f"{facts['lsh_negative_candidates']}"
    )
    print("\n| threshold | precision | recall | FP |\n|---|---|---|---|")
    print("\n".join(sweep()))


if __name__ == "__main__":
    main()
