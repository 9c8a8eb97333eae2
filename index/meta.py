"""Read who published an article and when: title, outlet, URL, author, dates.

Where it is read from, lowest precedence first; a later layer overrides a field it states:

1. plain-text lines at the top and the bottom of the text (any format): "Stand: 09.11.2022
   19:45 Uhr" (last update), "Veröffentlicht am …", "Aktualisiert: …", a line that is only a
   date ("31.08.2021, 18:06 Uhr": publication), "Quelle: Radio Elbtal" (outlet), "Von: Name";
2. HTML: trafilatura's metadata (meta tags, ``og:``/``article:`` properties, JSON-LD
   ``NewsArticle``), htmldate for the publication date without its text heuristics, and
   only explicit markers for the last update (``article:modified_time``, ``dateModified``);
   Markdown: YAML front matter;
3. a sidecar ``<article>.meta.json`` / ``.meta.yaml`` (``story.html.meta.json`` or
   ``story.meta.json``). A field it sets to null or "" is cleared.

Nothing is guessed: a field no layer states stays "". Bad metadata never fails an
article: a value that is the wrong type, too long, or not a date is dropped with a warning
(in the index report, and logged), and the article is indexed with the rest.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.filters import normalize_date, later
from rag.types import ArticleMeta

log = logging.getLogger(__name__)

FIELDS = ("title", "outlet", "url", "author", "published", "updated")
MAX_CHARS = {"title": 500, "outlet": 200, "url": 2048, "author": 500, "published": 64, "updated": 64}
ALIASES = {
    "site_name": "outlet",
    "sitename": "outlet",
    "site": "outlet",
    "publisher": "outlet",
    "date": "published",
    "date_published": "published",
    "datepublished": "published",
    "pubdate": "published",
    "lastmod": "updated",
    "modified": "updated",
    "date_modified": "updated",
    "datemodified": "updated",
    "last_update": "updated",
    "authors": "author",
    "link": "url",
    "canonical_url": "url",
}
SIDECAR_SUFFIXES = (".meta.json", ".meta.yaml", ".meta.yml")
MAX_SIDECAR_BYTES = 1024 * 1024
MAX_FRONT_MATTER_CHARS = 64 * 1024
HEAD_LINES, TAIL_LINES = 6, 6
# Larger HTML attribute values and <script>/<style>/<title> blocks make lxml give up on the whole
# page (its limit is 10 MB per node): they are cut out before parsing, with a warning.
MAX_HTML_NODE_CHARS = 1_000_000
METADATA_VERSION = "meta-1"  # in each record's metadata hash: a change re-reads metadata, re-embeds nothing


@dataclass(frozen=True)
class Extracted:
    meta: ArticleMeta
    title: str  # "" when no layer states one (the cleaner then finds it in the text)
    warnings: tuple[str, ...] = ()


Layer = tuple[str, dict[str, Any]]  # (where it was read, raw field values)


# ----- combining layers
def resolve(layers: list[Layer], warnings: list[str] | None = None) -> Extracted:
    """Validated fields of all layers, later layers overriding earlier ones."""
    warnings = list(warnings or [])
    value: dict[str, str] = {}
    for where, raw in layers:
        for name, given in raw.items():
            checked = _check(name, given, where, warnings)
            if checked is not None:
                value[name] = checked
    published, updated = value.get("published", ""), value.get("updated", "")
    if published and updated and not later(published, updated):
        if later(updated, published):
            warnings.append(f"last update {updated} is before the publication date {published}: ignored")
        updated = ""  # the same moment, or earlier: not an update
    meta = ArticleMeta(
        outlet=value.get("outlet", ""),
        url=value.get("url", ""),
        author=value.get("author", ""),
        published=published,
        updated=updated,
    )
    return Extracted(meta, value.get("title", ""), tuple(warnings))


def _check(name: str, given: object, where: str, warnings: list[str]) -> str | None:
    """The field's stored form; "" for an explicit empty value; None (with a warning) for a bad one."""
    if given is None or given == "":
        return ""
    if name == "author" and isinstance(given, list) and all(isinstance(a, str) for a in given):
        given = ", ".join(a.strip() for a in given if a.strip())
    if name in ("published", "updated"):
        try:
            return normalize_date(given)
        except ValueError as exc:
            warnings.append(f"{where}: {name} date ignored ({_short(exc)})")
            return None
    if not isinstance(given, str):
        warnings.append(f"{where}: {name} ignored (expected text, got {type(given).__name__})")
        return None
    text = " ".join(given.split())
    if len(text) > MAX_CHARS[name]:
        warnings.append(f"{where}: {name} ignored ({len(text):,} characters, at most {MAX_CHARS[name]:,})")
        return None
    if name == "url" and not re.fullmatch(r"https?://\S+", text):
        warnings.append(f"{where}: url ignored (not an http(s) address)")
        return None
    return text


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 160 else text[:157] + "…"


def _known(raw: dict, where: str, warnings: list[str] | None) -> dict[str, Any]:
    """Known fields of a mapping (aliases resolved); unknown keys warned about when ``warnings`` is given."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = ALIASES.get(str(key).lower(), str(key).lower())
        if name in FIELDS:
            out[name] = value
        elif warnings is not None:
            warnings.append(f"{where}: unknown field {str(key)[:40]!r} ignored (known: {', '.join(FIELDS)})")
    return out


# ----- plain-text lines
_WHEN = (
    r"(?P<when>\d{1,2}\.\s?\d{1,2}\.\s?\d{4}(?:,?\s+\d{1,2}[:.]\d{2}(?:\s*Uhr)?)?"
    r"|\d{1,2}\.?\s+[A-Za-zäÄ]{3,9}\s+\d{4}(?:,?\s+\d{1,2}[:.]\d{2}(?:\s*Uhr)?)?"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?)"
)
_LINE_PATTERNS = [
    ("updated", re.compile(r"Stand:?\s*" + _WHEN + r"\.?", re.I)),
    ("published", re.compile(r"(?:Veröffentlicht|Erschienen|Published)(?:\s+(?:am|on))?:?\s*" + _WHEN + r"\.?", re.I)),
    ("updated", re.compile(r"(?:Zuletzt\s+)?(?:Aktualisiert|Updated)(?:\s+(?:am|on))?:?\s*" + _WHEN + r"\.?", re.I)),
    ("published", re.compile(_WHEN + r"\.?")),
    ("outlet", re.compile(r"Quelle:\s*(?P<v>[^\W\d_][^!?:;()]{0,58}[^\s.!?:;,()])", re.I)),
    (
        "author",
        re.compile(
            r"(?:Von|Autor|Autorin|By):\s*(?P<v>[A-ZÄÖÜ][\w.\-]+(?: [A-ZÄÖÜ][\w.\-]+){0,3}"
            r"(?: und [A-ZÄÖÜ][\w.\-]+(?: [A-ZÄÖÜ][\w.\-]+){0,3})?)"
        ),
    ),
]


def text_fields(text: str) -> dict[str, Any]:
    """Fields stated by whole lines among the first and last few lines (first match wins)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    edge = lines[:HEAD_LINES] + lines[max(HEAD_LINES, len(lines) - TAIL_LINES) :]
    found: dict[str, Any] = {}
    for line in edge:
        if len(line) > 120:  # a metadata line is short; a paragraph that mentions a date is text
            continue
        for name, pattern in _LINE_PATTERNS:
            match = pattern.fullmatch(line)
            if match and name == "outlet" and (". " in match["v"] or len(match["v"].split()) > 6):
                continue  # a sentence that starts with "Quelle:", not a name
            if match and name not in found:
                found[name] = match["when"] if "when" in pattern.groupindex else match["v"].strip()
                break
    return found


# ----- Markdown front matter
_FRONT_OPEN = re.compile(r"\A\ufeff?---[ \t]*\r?\n")
_FRONT_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.M)


def split_front_matter(text: str, warnings: list[str]) -> tuple[str, dict[str, Any]]:
    """(text without its front matter, the front matter's known fields). Text that does not start
    with a YAML mapping between ``---`` lines is returned unchanged."""
    opened = _FRONT_OPEN.match(text)
    if not opened:
        return text, {}
    close = _FRONT_CLOSE.search(text, opened.end(), opened.end() + MAX_FRONT_MATTER_CHARS)
    if close is None:
        return text, {}
    import yaml

    try:
        data = yaml.safe_load(text[opened.end() : close.start()])
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        warnings.append(f"front matter ignored (not valid YAML: {first[:120]})")
        return text, {}
    if not isinstance(data, dict):  # "---" rules around a paragraph, not front matter
        return text, {}
    return text[close.end() :].lstrip("\r\n"), _known(data, "front matter", None)


# ----- sidecar files
def sidecar_for(path: Path) -> Path | None:
    """The sidecar of an article file, if one exists: ``name.ext.meta.*`` before ``name.meta.*``."""
    for base in dict.fromkeys((path.name, path.stem)):
        for suffix in SIDECAR_SUFFIXES:
            candidate = path.with_name(base + suffix)
            if candidate.is_file():
                return candidate
    return None


def is_sidecar(path: Path) -> bool:
    return path.name.lower().endswith(SIDECAR_SUFFIXES)


def read_sidecar(path: Path, warnings: list[str]) -> dict[str, Any]:
    where = f"sidecar {path.name}"
    try:
        size = path.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            warnings.append(f"{where} ignored ({size / 1e6:.1f} MB, at most {MAX_SIDECAR_BYTES / 1e6:.0f} MB)")
            return {}
        raw = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        warnings.append(f"{where} ignored (cannot read it: {_short(exc)})")
        return {}
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            import yaml

            data = yaml.safe_load(raw)
    except Exception as exc:  # noqa: BLE001 - json and yaml raise several types; all mean "not readable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        warnings.append(
            f"{where} ignored (not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {first[:120]})"
        )
        return {}
    if not isinstance(data, dict):
        warnings.append(f"{where} ignored (expected an object of fields, got {type(data).__name__})")
        return {}
    return _known(data, where, warnings)


# ----- HTML
_ISO_OUT = "%Y-%m-%dT%H:%M:%S%z"
_MODIFIED_XPATH = (
    "//meta[@property='article:modified_time' or @property='og:updated_time' or @name='last-modified'"
    " or @itemprop='dateModified' or @name='dateModified']/@content"
    " | //*[@itemprop='dateModified']/@datetime"
)
_ARTICLE_TYPES = (
    "Article",
    "NewsArticle",
    "ReportageNewsArticle",
    "AnalysisNewsArticle",
    "BlogPosting",
    "Report",
    "LiveBlogPosting",
)


def html_fields(html: str, warnings: list[str]) -> dict[str, Any]:
    """Fields from trafilatura's metadata; ``html`` should have passed :func:`defuse_html`."""
    import trafilatura

    try:
        doc = trafilatura.extract_metadata(
            html, date_config={"original_date": True, "extensive_search": False, "outputformat": _ISO_OUT}
        )
    except Exception as exc:  # noqa: BLE001 - a bug in a page's markup must not fail the article
        warnings.append(f"HTML metadata ignored (trafilatura failed: {_short(exc)})")
        return {}
    found: dict[str, Any] = {}
    for name, value in (("title", doc.title), ("outlet", doc.sitename), ("url", doc.url), ("author", doc.author)):
        if value:
            found[name] = value.replace("; ", ", ") if name == "author" else value
    if doc.date:
        found["published"] = _htmldate(doc.date)
    modified = _modified(html)
    if modified:
        found["updated"] = modified
    return found


def _htmldate(value: str) -> str:
    """htmldate writes midnight for a date that had no time: keep it a bare date."""
    return value[:10] if value.endswith("T00:00:00") else value


def _modified(html: str) -> str:
    """The last update, only from explicit markers (htmldate's latest date can be any date on the page)."""
    import lxml.etree
    import lxml.html

    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.LxmlError):  # unparseable: trafilatura has already said so
        return ""
    for value in tree.xpath(_MODIFIED_XPATH):
        if str(value).strip():
            return str(value).strip()
    for script in tree.xpath("//script[@type='application/ld+json']/text()"):
        try:
            data = json.loads(script)
        except ValueError:
            continue
        for obj in _json_objects(data):
            types = obj.get("@type")
            types = types if isinstance(types, list) else [types]
            if any(t in _ARTICLE_TYPES for t in types) and isinstance(obj.get("dateModified"), str):
                return obj["dateModified"]
    return ""


def _json_objects(data: Any, depth: int = 0) -> list[dict]:
    if depth > 4:
        return []
    if isinstance(data, list):
        return [o for item in data[:50] for o in _json_objects(item, depth + 1)]
    if isinstance(data, dict):
        return [data, *_json_objects(data.get("@graph", []), depth + 1)]
    return []


_BIG_ATTRIBUTE = re.compile(rf"(=\s*)(\"[^\"<]{{{MAX_HTML_NODE_CHARS},}}\"|'[^'<]{{{MAX_HTML_NODE_CHARS},}}')")
_BLOCK_OPEN = re.compile(r"<(script|style|title)\b[^>]*>", re.I)


def defuse_html(html: str, warnings: list[str]) -> str:
    """The page without attribute values or script/style/title blocks above
    :data:`MAX_HTML_NODE_CHARS` (lxml fails on the whole page when a node passes 10 MB)."""
    if len(html) <= MAX_HTML_NODE_CHARS:
        return html

    def drop_attribute(match: re.Match[str]) -> str:
        warnings.append(f"an HTML attribute of {len(match[2]) / 1e6:.1f} MB ignored")
        return f'{match[1]}""'

    html = _BIG_ATTRIBUTE.sub(drop_attribute, html)
    lower = html.lower()
    out, pos = [], 0
    for opened in _BLOCK_OPEN.finditer(html):
        if opened.start() < pos:
            continue
        name = opened[1].lower()
        close = lower.find(f"</{name}", opened.end())
        end = len(html) if close < 0 else close
        if end - opened.end() > MAX_HTML_NODE_CHARS:
            warnings.append(f"an HTML <{name}> block of {(end - opened.end()) / 1e6:.1f} MB ignored")
            out.append(html[pos : opened.end()])
            pos = end
    out.append(html[pos:])
    return "".join(out)


def log_warnings(source: str, warnings: tuple[str, ...] | list[str]) -> None:
    """Also to the log, at INFO: the index report carries them (the CLI prints them), and
    Python's last-resort handler would print WARNINGs a second time on stderr."""
    for warning in warnings:
        log.info("%s: %s", source, warning)
