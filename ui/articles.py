"""The Articles tab's table, as news: newest first, outlet and date on every row, a filter by
outlet, and the copies of one story kept together.

Pure HTML over the article records the pipeline lists (objects with ``source``, ``title``,
``chunks``, ``chars`` and, when known, ``meta`` and ``story``); nothing here touches Gradio or
the store. Every value from an article is escaped (:func:`esc`) before markup goes round it.

A story (``story``, set at indexing by :mod:`index.dedup`) is articles that share a
near-duplicate passage or a URL. One told by several articles is shown as a block under a
line naming its outlets, placed by its newest article; inside it, the newest first. Articles
with the same URL are versions: the latest is marked as such, the others as older versions.
Dates sort by the article's own date (published, else updated); undated articles come last.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from rag.types import NO_META, ArticleMeta, outlet_key

COLUMNS = ("Date", "Outlet", "Title", "File", "Passages", "Characters")


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def outlet_names(infos: Sequence[Any]) -> list[str]:
    """The outlets of the indexed articles, sorted, one spelling per outlet (filters ignore case)."""
    names: dict[str, str] = {}
    for info in infos:
        outlet = _meta(info).outlet
        if outlet:
            names.setdefault(outlet_key(outlet), outlet)
    return sorted(names.values(), key=str.casefold)


def _meta(info: Any) -> ArticleMeta:
    return getattr(info, "meta", None) or NO_META


def _when(info: Any) -> tuple[str, str]:
    meta = _meta(info)
    return meta.date, meta.latest


def stories(infos: Sequence[Any]) -> list[list[Any]]:
    """The articles as stories, each newest first; stories ordered by their newest article (undated last)."""
    by: dict[str, list[Any]] = {}
    for info in infos:
        by.setdefault(getattr(info, "story", "") or f"\x00{info.source}", []).append(info)
    groups = [sorted(members, key=lambda a: (_when(a), a.source), reverse=True) for members in by.values()]
    return sorted(groups, key=lambda g: (_when(g[0]), g[0].source), reverse=True)


def versions(members: Sequence[Any]) -> dict[str, str]:
    """source -> "latest version" / "older version" for the articles of a story that share a URL."""
    by_url: dict[str, list[Any]] = {}
    for info in members:
        if _meta(info).url:
            by_url.setdefault(_meta(info).url, []).append(info)
    out = {}
    for same in by_url.values():
        if len(same) > 1:
            ordered = sorted(same, key=lambda a: (_meta(a).latest, a.source), reverse=True)
            out.update({a.source: "older version" for a in ordered[1:]})
            out[ordered[0].source] = "latest version"
    return out


def articles_html(infos: Sequence[Any], outlets: Sequence[str] | None = None) -> str:
    """The table; ``outlets`` (names, any case) keeps only their articles (none: all)."""
    if not infos:
        return '<div class="rag-articles"><p class="src-empty">No articles are indexed. Upload some below.</p></div>'
    wanted = {outlet_key(o) for o in outlets or ()}
    rows: list[str] = []
    shown = told = 0
    for members in stories(infos):
        visible = [a for a in members if not wanted or outlet_key(_meta(a).outlet) in wanted]
        if not visible:
            continue
        shown += len(visible)
        marks = versions(members)
        if len(members) > 1:
            told += 1
            rows.append(_story_row(members, len(visible)))
        rows += [_row(a, marks.get(a.source, ""), in_story=len(members) > 1) for a in visible]
    n = len(infos)
    head = f"{n} article{'s' if n != 1 else ''} indexed"
    if told:
        head += f"; {told} stor{'ies' if told != 1 else 'y'} told by several articles, kept together"
    if wanted:
        head += f". Showing {shown} from {esc(', '.join(outlets or ()))}"
    header = "".join(
        f'<th class="num">{c}</th>' if c in ("Passages", "Characters") else f"<th>{c}</th>" for c in COLUMNS
    )
    return (
        f'<div class="rag-articles"><p>{head}.</p><table><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _story_row(members: Sequence[Any], visible: int) -> str:
    names = list(dict.fromkeys(_meta(a).outlet or "unknown outlet" for a in members))
    count = f"{len(members)} articles" + (f", {visible} shown" if visible < len(members) else "")
    return (
        f'<tr class="art-story"><td colspan="{len(COLUMNS)}">Story: {esc(members[0].title)} '
        f'<span class="art-story-outlets">({count}: {esc(", ".join(names))})</span></td></tr>'
    )


def _row(info: Any, version: str, *, in_story: bool) -> str:
    meta = _meta(info)
    day = meta.date[:10]
    when = day + (f" (updated {meta.updated[:10]})" if meta.published and meta.updated else "")
    if not meta.published and meta.updated:
        when = f"updated {meta.updated[:10]}"
    mark = f' <span class="art-version">{esc(version)}</span>' if version else ""
    return (
        f'<tr class="art{" in-story" if in_story else ""}" data-source="{esc(info.source)}">'
        f'<td class="art-date{"" if when else " unknown"}">{esc(when or "undated")}</td>'
        f'<td class="art-outlet{"" if meta.outlet else " unknown"}">{esc(meta.outlet or "unknown outlet")}</td>'
        f'<td class="art-title">{esc(getattr(info, "title", ""))}{mark}</td>'
        f'<td class="art-source"><code>{esc(info.source)}</code></td>'
        f'<td class="num">{int(getattr(info, "chunks", 0))}</td>'
        f'<td class="num">{int(getattr(info, "chars", 0)):,}</td></tr>'
    )
