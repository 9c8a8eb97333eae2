"""Shared by the robustness tests (tests/test_robust_*.py): a full consistency check of a
store, read cold from Chroma and the keyword index's SQLite file."""

from __future__ import annotations

from collections import Counter

from index.chunk import chunk_id
from rag.api import Pipeline


def assert_consistent(pipeline: Pipeline) -> dict[str, int]:
    """Articles, chunks and keyword entries agree; returns chunks per article.

    - no duplicate chunk ids in Chroma (raw ids, so duplicates would show);
    - Chroma chunk ids == keyword ids in memory == keyword rows on disk;
    - every chunk belongs to an article record, carries that record's content hash,
      has the id its content gives it, and ``chunk.text == article.text[start:end]``;
    - each record's chunk count matches the chunks stored for it.
    """
    raw = pipeline.store._chunks.get(include=["documents", "metadatas"])
    ids = raw["ids"]
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates, f"duplicate chunk ids in Chroma: {duplicates[:3]}"
    keyword_memory = pipeline.keyword.ids()
    keyword_rows = [r[0] for r in pipeline.keyword._db.execute("SELECT id FROM docs")]
    assert len(keyword_rows) == len(set(keyword_rows)), "duplicate rows in the keyword index"
    assert set(ids) == keyword_memory == set(keyword_rows), (
        f"Chroma and keyword index differ: {len(set(ids) - keyword_memory)} missing from keyword, "
        f"{len(keyword_memory - set(ids))} orphaned in keyword"
    )

    infos = {a.source: a for a in pipeline.sources()}
    articles = {source: pipeline.article(source) for source in infos}
    per_article: Counter[str] = Counter()
    for cid, text, meta in zip(ids, raw["documents"], raw["metadatas"], strict=True):
        source = meta["source"]
        assert source in articles, f"chunk {cid} of {source!r} has no article record"
        article = articles[source]
        assert meta["content_hash"] == article.content_hash, f"stale chunk {cid} of {source!r}"
        start, end = int(meta["start"]), int(meta["end"])
        assert 0 <= start < end <= len(article.text)
        assert text == article.text[start:end], f"chunk {cid} is not article.text[{start}:{end}]"
        assert cid == chunk_id(source, start, text, meta["content_hash"])
        per_article[source] += 1
    for source, info in infos.items():
        assert per_article[source] == info.chunks, (
            f"{source!r}: record says {info.chunks}, store has {per_article[source]}"
        )
        assert info.chars == len(articles[source].text)
    assert sum(per_article.values()) == len(ids)
    return dict(per_article)


def assert_usable_after_interruption(pipeline: Pipeline, question: str = "Nordkorea Russland Waffen") -> None:
    """What must hold between an interrupted run and the run that completes it: once the
    pipeline has opened its indexer (which reconciles the keyword index with Chroma),
    the two hold the same ids with no duplicates, every recorded article is whole, and
    retrieval shows only chunks of complete articles (chunks of an article whose run was
    killed may sit in the store, waiting for the next run, but are never shown)."""
    _ = pipeline.indexer  # reconciles
    raw = pipeline.store._chunks.get(include=["documents", "metadatas"])
    assert len(raw["ids"]) == len(set(raw["ids"]))
    assert set(raw["ids"]) == pipeline.keyword.ids()
    infos = {a.source: a for a in pipeline.sources()}
    whole: Counter[str] = Counter()
    for text, meta in zip(raw["documents"], raw["metadatas"], strict=True):
        info = infos.get(meta["source"])
        if info is not None and meta["content_hash"] == info.content_hash:
            article = pipeline.article(meta["source"])
            assert text == article.text[int(meta["start"]) : int(meta["end"])]
            whole[meta["source"]] += 1
    for source, info in infos.items():
        # 0 is the one other state: killed while replacing a changed article, after its old
        # chunks were deleted and before its new record was written; invisible, never half shown.
        assert whole[source] in (0, info.chunks), f"{source!r}: {whole[source]} of {info.chunks} chunks"
    if infos:
        for p in pipeline.retrieve(question, k=20):
            assert p.source in infos
            assert p.text == pipeline.article(p.source).text[p.start : p.end]
