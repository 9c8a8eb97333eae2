"""Pure HTML rendering for the chat page: answers, the sources panel, the article list.

Everything that comes from an article, an upload, a model or the user is untrusted and
passes through :func:`html.escape` here before any markup is wrapped around it; the
Gradio HTML component inserts its value as-is (``innerHTML``). Nothing in this module
touches Gradio, the store or the network, so it is tested with plain tables of inputs.

Ids: a conversation turn ``t`` (1-based) owns a section ``turn-t`` in the sources panel,
and its passage ``n`` is the ``<details id="src-t-n">`` that a ``[n]`` marker of that
turn's answer links to (``href="#src-t-n"``), so markers in earlier answers still point
at their own sources after a follow-up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape

from rag.answer.prompts import CITATION_RE
from rag.types import Answer, Citation, Passage
from ui.articles import articles_html as articles_html  # re-exported: the Articles tab's table

SNIPPET_TITLE_CHARS = 140


def esc(text: object) -> str:
    return escape(str(text), quote=True)


# ----- spans
def merge_spans(spans: Iterable[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Spans clipped to ``[0, length]``, empty ones dropped, overlapping ones merged, sorted."""
    clipped = sorted((max(0, s), min(length, e)) for s, e in spans)
    merged: list[tuple[int, int]] = []
    for start, end in clipped:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` escaped, with each span (offsets into ``text``) wrapped in ``<mark>``."""
    out, pos = [], 0
    for start, end in merge_spans(spans, len(text)):
        out.append(esc(text[pos:start]))
        out.append(f"<mark>{esc(text[start:end])}</mark>")
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def cited_spans(passage: Passage, citations: Iterable[Citation]) -> list[tuple[int, int]]:
    """The citations' article offsets made relative to the passage (``highlight`` clips them to it)."""
    return [(c.start - passage.start, c.end - passage.start) for c in citations if c.source == passage.source]


# ----- chat messages
def user_html(question: str) -> str:
    return f'<div class="rag-question">{esc(question)}</div>'


def pending_html() -> str:
    return '<div class="rag-draft rag-pending">Searching the articles …</div>'


def draft_html(text: str) -> str:
    """The streamed draft: escaped, markers shown but not yet linked (sources come with the end)."""
    body = CITATION_RE.sub(lambda m: f'<span class="cite-draft">[{esc(m.group(1))}]</span>', esc(text))
    return f'<div class="rag-draft">{body}<span class="rag-cursor">▍</span></div>'


def answer_html(answer: Answer, turn: int) -> str:
    """The final answer: ``[n]`` markers become links to ``#src-turn-n``; an abstention is a notice."""
    if answer.abstained:
        hint = (
            "The passages that came closest are listed under Sources."
            if answer.passages
            else "No passage was found: with filters set, no article may pass them."
        )
        return (
            f'<div class="rag-abstained abstained" data-turn="{turn}"><div class="rag-notice-title">'
            f'No answer in the articles</div><p>{esc(answer.answer)}</p><p class="rag-hint">{hint}</p></div>'
        )
    n_passages = len(answer.passages)
    body = CITATION_RE.sub(lambda m: _marker_links(m.group(1), turn, n_passages), esc(answer.answer))
    return f'<div class="rag-answer" data-turn="{turn}">{body}</div>'


def _marker_links(group: str, turn: int, n_passages: int) -> str:
    links = []
    for part in re.split(r"\s*[,;]\s*", group):
        n = int(part)
        if 1 <= n <= n_passages:
            links.append(f'<a class="cite" href="#src-{turn}-{n}" title="Show source {n}">[{n}]</a>')
        else:
            links.append(f"[{n}]")
    return "".join(links)


def error_html(message: str) -> str:
    return f'<div class="rag-error"><div class="rag-notice-title">Could not answer</div><p>{esc(message)}</p></div>'


# ----- the sources panel
def passage_html(passage: Passage, n: int, turn: int, citations: Sequence[Citation], *, show_scores: bool) -> str:
    """One retrieved passage as ``<details>``: open, with highlighted spans, when cited."""
    spans = cited_spans(passage, citations)
    cited = bool(citations)
    score = ""
    if show_scores:
        parts = [f"score {passage.score:.4f}"]
        if passage.dense_score is not None:
            parts.append(f"dense {passage.dense_score:.3f}")
        if passage.keyword_score is not None:
            parts.append(f"keyword {passage.keyword_score:.2f}")
        score = f'<span class="src-score">{esc(" · ".join(parts))}</span>'
    title = (
        passage.title if len(passage.title) <= SNIPPET_TITLE_CHARS else passage.title[: SNIPPET_TITLE_CHARS - 1] + "…"
    )
    return (
        f'<details class="src{" cited" if cited else ""}" id="src-{turn}-{n}"{" open" if cited else ""}>'
        f'<summary><span class="src-n">[{n}]</span> <span class="src-title">{esc(title)}</span></summary>'
        f'<div class="src-meta">{origin_html(passage.meta)}<span class="src-file">{esc(passage.source)}</span>'
        f'<span class="src-chars">chars {passage.start}–{passage.end}</span>{score}</div>{copies_html(passage)}'
        f'<div class="src-text">{highlight(passage.text, spans)}</div></details>'
    )


def copies_html(passage: Passage) -> str:
    """The other copies of a passage (other outlets, older versions): who else carries it, and when."""
    if not passage.also_in:
        return ""
    older = {p.id for p in passage.older_versions if p.meta.url and p.meta.url == passage.meta.url}
    items = "".join(
        f'<li>{origin_html(p.meta)}<span class="src-file">{esc(p.source)}</span>'
        f"{' <em>older version</em>' if p.id in older else ''}</li>"
        for p in passage.also_in
    )
    n = len(passage.also_in)
    return f'<div class="src-copies">Also in {n} other article{"s" if n != 1 else ""}:<ul>{items}</ul></div>'


def origin_html(meta: object) -> str:
    """Outlet and date of a source (shown on every one): "unknown outlet" / "undated" when the
    article does not say, so a missing date is never mistaken for a recent one."""
    outlet = getattr(meta, "outlet", "")
    published, updated = getattr(meta, "published", ""), getattr(meta, "updated", "")
    when = published[:10] or (f"updated {updated[:10]}" if updated else "")
    if published and updated:
        when += f" (updated {updated[:10]})"
    return (
        f'<span class="src-outlet{"" if outlet else " unknown"}">{esc(outlet or "unknown outlet")}</span>'
        f'<span class="src-date{"" if when else " unknown"}">{esc(when or "undated")}</span>'
    )


def turn_sources_html(answer: Answer, turn: int, *, show_scores: bool, active: bool) -> str:
    """The sources of one answer: cited passages first (open), then the other retrieved ones (closed)."""
    by_n: dict[int, list[Citation]] = {}
    for c in answer.citations:
        by_n.setdefault(c.n, []).append(c)
    numbered = list(enumerate(answer.passages, start=1))
    cited = [(n, p) for n, p in numbered if n in by_n]
    others = [(n, p) for n, p in numbered if n not in by_n]
    parts = [
        f'<section class="turn" id="turn-{turn}" data-turn="{turn}"{"" if active else " hidden"}>',
        f'<div class="turn-question">Question {turn}: {esc(answer.question)}</div>',
    ]
    if answer.standalone_question and answer.standalone_question != answer.question:
        parts.append(f'<div class="turn-rewrite">Searched as: {esc(answer.standalone_question)}</div>')
    if cited:
        parts.append('<h4 class="src-heading">Cited passages</h4>')
        parts += [passage_html(p, n, turn, by_n[n], show_scores=show_scores) for n, p in cited]
    elif answer.abstained:
        parts.append('<p class="src-empty">No passage supports an answer.</p>')
    if others:
        label = "Other retrieved passages" if cited else "Retrieved passages"
        parts.append(f'<h4 class="src-heading">{label} <span class="src-count">({len(others)})</span></h4>')
        parts += [passage_html(p, n, turn, (), show_scores=show_scores) for n, p in others]
    parts.append("</section>")
    return "".join(parts)


def sources_html(answers: Sequence[Answer | None], *, show_scores: bool = False) -> str:
    """The whole panel; the last answered turn is shown, earlier ones wait hidden for their links."""
    answered = [(t, a) for t, a in enumerate(answers, start=1) if a is not None]
    if not answered:
        return (
            '<div class="rag-sources"><h3>Sources</h3><p class="src-empty">Ask a question: the passages '
            "behind the answer appear here, the cited words highlighted.</p></div>"
        )
    last = answered[-1][0]
    body = "".join(turn_sources_html(a, t, show_scores=show_scores, active=t == last) for t, a in answered)
    return f'<div class="rag-sources"><h3>Sources</h3>{body}</div>'


# ----- upload and remove results (the Articles tab's table is ui.articles)
def status_html(lines: Sequence[tuple[str, str]]) -> str:
    """Upload / remove results: (kind, message) with kind "ok" or "error"."""
    if not lines:
        return ""
    items = "".join(f'<li class="status-{esc(kind)}">{esc(text)}</li>' for kind, text in lines)
    return f'<ul class="rag-status">{items}</ul>'
