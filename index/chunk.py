"""Split a cleaned article into chunks that keep exact character offsets.

llama-index's ``SentenceSplitter`` does the packing, with two changes to its defaults
that matter for German news: sentences are found by NLTK's German punkt model (bundled
with llama-index-core; the default English one breaks at "Dr." or "12. September"),
and sizes are counted with the *embedder's* tokenizer, so no chunk exceeds the
embedder's window. The splitter returns strings, so each chunk is located again in the
article; the stored text is then ``article_text[start:end]`` by construction.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rag.types import Chunk

if TYPE_CHECKING:
    from nltk.tokenize.punkt import PunktTokenizer

TokenCounter = Callable[[str], int]
GERMAN_ABBREVIATIONS = {
    "z",
    "b",
    "z.b",
    "ca",
    "bzw",
    "usw",
    "u.a",
    "d.h",
    "evtl",
    "ggf",
    "inkl",
    "vgl",
    "nr",
    "bspw",
    "sog",
    "etc",
    "mio",
    "mrd",
    "tsd",
    "jh",
    "jhd",
    "abs",
    "str",
    "prof",
    "dr",
    "st",
    "min",
    "max",
    "gr",
    "kl",
    "u.ä",
    "o.ä",
}


@lru_cache(maxsize=1)
def _german_punkt() -> PunktTokenizer:
    import nltk
    import llama_index.core

    data = Path(llama_index.core.__file__).parent / "_static" / "nltk_cache"
    if str(data) not in nltk.data.path:
        nltk.data.path.append(str(data))
    from nltk.tokenize.punkt import PunktTokenizer

    tokenizer = PunktTokenizer("german")
    # Common German abbreviations punkt's German model lacks (it splits "z. B." and "ca.").
    tokenizer._params.abbrev_types.update(GERMAN_ABBREVIATIONS)
    return tokenizer


def split_sentences(text: str) -> list[str]:
    """German sentence split that keeps every character (pieces concatenate to ``text``)."""
    spans = list(_german_punkt().span_tokenize(text))
    if not spans:
        return [text] if text else []
    pieces = []
    for i, (start, _) in enumerate(spans):
        end = spans[i + 1][0] if i + 1 < len(spans) else len(text)
        pieces.append(text[(0 if i == 0 else start) : end])
    return pieces


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of ``text[start:end]``, whitespace trimmed."""
    end = len(text) if end is None else end
    out = []
    for para in re.finditer(r"[^\n]+", text[start:end]):
        base = start + para.start()
        for s, e in _german_punkt().span_tokenize(para.group()):
            out.append((base + s, base + e))
    return out


class Chunker:
    """Article text -> chunks with offsets, sized in embedder tokens."""

    def __init__(self, count_tokens: TokenCounter, chunk_size: int, chunk_overlap: int) -> None:
        from llama_index.core.node_parser import SentenceSplitter

        self._splitter = SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            tokenizer=lambda text: range(count_tokens(text)),  # only len() is used
            paragraph_separator="\n\n",
            chunking_tokenizer_fn=split_sentences,
        )

    def chunk(self, text: str, source: str, title: str, version: str = "") -> list[Chunk]:
        """``version`` (the article's content hash) goes into every chunk id, see :func:`chunk_id`."""
        chunks: list[Chunk] = []
        cursor = 0
        for piece in self._splitter.split_text(text):
            span = locate(text, piece, cursor)
            if span is None:  # cannot happen unless the splitter rewrote words; never guess offsets
                raise ValueError(f"chunk of {source!r} not found in its article text")
            start, end = span
            body = text[start:end]
            chunks.append(
                Chunk(
                    id=chunk_id(source, start, body, version),
                    source=source,
                    title=title,
                    text=body,
                    start=start,
                    end=end,
                    index=len(chunks),
                )
            )
            cursor = start + 1
        return chunks


def locate(text: str, piece: str, cursor: int) -> tuple[int, int] | None:
    """Where ``piece`` stands in ``text`` at or after ``cursor``, tolerating whitespace changes."""
    at = text.find(piece, cursor)
    if at < 0:
        at = text.find(piece)
    if at >= 0:
        return at, at + len(piece)
    words = piece.split()
    if not words:
        return None
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    match = pattern.search(text, cursor) or pattern.search(text)
    return (match.start(), match.end()) if match else None


def chunk_id(source: str, start: int, text: str, version: str = "") -> str:
    """Content hash: the same chunk of the same article version always gets the same id.

    The version (the article's content hash) is part of it so that a chunk both versions
    share is written anew instead of overwritten in place: while an article is replaced,
    its old chunks stay exactly as its old record describes until they are deleted.
    """
    return hashlib.sha256(f"{source}\x00{version}\x00{start}\x00{text}".encode()).hexdigest()[:32]
