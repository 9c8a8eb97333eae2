"""Parsing and rendering ``[n]`` citation markers: pure functions, no models.

An answer is read as a list of :class:`Claim` (one per sentence) with the passage
numbers it cites; markers may sit before or after the full stop ("… [1]." or "…. [1]"),
and "[1, 2]" or "[1][2]" cite two passages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.chunk import split_sentences
from rag.answer.prompts import CITATION_RE

_LEADING_MARKS = re.compile(r"^(?:\s*\[\d{1,2}(?:\s*[,;]\s*\d{1,2})*\])+")


@dataclass(frozen=True)
class Claim:
    text: str  # the sentence without markers
    cites: tuple[int, ...]  # passage numbers, in order of appearance, unique


def parse_answer(answer: str) -> list[Claim]:
    """Split an answer into sentences and their cited passage numbers."""
    answer = answer.strip()
    if not answer:
        return []
    claims = []
    for part in _split(answer):
        cites: list[int] = []
        for group in CITATION_RE.findall(part):
            for n in re.split(r"\s*[,;]\s*", group):
                if int(n) not in cites:
                    cites.append(int(n))
        text = CITATION_RE.sub("", part)
        text = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s{2,}", " ", text)).strip()
        if text:
            claims.append(Claim(text, tuple(cites)))
    return claims


def _split(answer: str) -> list[str]:
    """German punkt sentences ("am 12. September" stays whole); a marker that opens a
    sentence ("… Satz. [1] Nächster") belongs to the sentence before it."""
    pieces: list[str] = []
    for sentence in split_sentences(answer):
        sentence = sentence.strip()
        lead = _LEADING_MARKS.match(sentence)
        if lead and pieces:
            pieces[-1] += " " + lead.group().strip()
            sentence = sentence[lead.end() :].strip()
        if sentence:
            pieces.append(sentence)
    return pieces


def render_claims(claims: list[Claim]) -> str:
    """Claims back into text, markers before the closing punctuation: "Satz [1]."."""
    out = []
    for claim in claims:
        text = claim.text
        marks = "".join(f"[{n}]" for n in claim.cites)
        if marks:
            stop = text[-1] if text[-1] in ".!?" else ""
            body = text[:-1] if stop else text
            text = f"{body.rstrip()} {marks}{stop or '.'}"
        out.append(text)
    return " ".join(out)


def valid_cites(claim: Claim, n_passages: int) -> tuple[int, ...]:
    """Only markers that point to a listed passage (1..n_passages)."""
    return tuple(n for n in claim.cites if 1 <= n <= n_passages)
