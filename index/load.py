"""Find article files and read them into text: .txt, .md, .html/.htm.

Decoding: UTF-8 (with or without BOM), else Windows-1252 / Latin-1 German. HTML goes
through trafilatura's main-text extraction. Every file that cannot be used becomes a
:class:`LoadFailure` with a one-line reason; nothing here raises for bad input.
Cleaning (boilerplate, repeated lines) is :mod:`index.clean`'s job, not this module's.
Metadata (outlet, dates, author, URL) is read by :mod:`index.meta`; bad metadata is a
warning on the :class:`LoadedText`, never a failure. Sidecar files (``*.meta.json``,
``*.meta.yaml``) are read with their article and are never articles themselves.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from index.meta import (
    defuse_html,
    html_fields,
    is_sidecar,
    log_warnings,
    read_sidecar,
    resolve,
    sidecar_for,
    split_front_matter,
    text_fields,
)
from rag.types import NO_META, ArticleMeta

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
MAX_FILE_BYTES = 20 * 1024 * 1024  # larger files are skipped: no news article is this long


@dataclass(frozen=True)
class SourceFile:
    """A file to index and the name it is known by in the store."""

    path: Path
    source: str  # relative to the folder it was found in; the file name for single files
    root: str  # absolute folder it was found in ("" for single files)


@dataclass(frozen=True)
class LoadedText:
    source: str
    root: str
    text: str  # decoded (and for HTML: extracted) text, before cleaning
    kind: str  # "text", "markdown" or "html"
    title_hint: str = ""  # e.g. the HTML <title>, the front matter's or the sidecar's title
    meta: ArticleMeta = NO_META
    warnings: tuple[str, ...] = ()  # metadata that was ignored, and why


@dataclass(frozen=True)
class LoadFailure:
    source: str
    reason: str


def discover(paths: list[Path]) -> tuple[list[SourceFile], list[LoadFailure]]:
    """Expand files and folders into the supported files below them, sorted by source."""
    found: dict[str, SourceFile] = {}
    failures: list[LoadFailure] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            root = path.resolve()
            for file in sorted(root.rglob("*")):
                if (
                    file.is_file()
                    and file.suffix.lower() in SUPPORTED_SUFFIXES
                    and not _hidden(file, root)
                    and not is_sidecar(file)
                ):
                    source = _readable_name(file.relative_to(root).as_posix())
                    found[source] = SourceFile(path=file, source=source, root=str(root))
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                failures.append(
                    LoadFailure(_readable_name(path.name), f"unsupported file type {path.suffix or '(none)'}")
                )
                continue
            name = _readable_name(path.name)
            found[name] = SourceFile(path=path, source=name, root="")
        else:
            failures.append(LoadFailure(str(given), "no such file or folder"))
    return [found[k] for k in sorted(found)], failures


def _readable_name(name: str) -> str:
    """A file name that is not UTF-8 (unpacked from an old Windows archive) read as Windows-1252,
    like file contents: the name must be valid text to be hashed and stored."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return decode_bytes(os.fsencode(name))
    return name


def _hidden(file: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in file.relative_to(root).parts)


def read_file(file: SourceFile) -> LoadedText | LoadFailure:
    """Read and decode one file; a failure carries the reason instead of raising."""
    try:
        size = file.path.stat().st_size
        if size > MAX_FILE_BYTES:
            return LoadFailure(file.source, f"file too large ({size / 1e6:.0f} MB > {MAX_FILE_BYTES / 1e6:.0f} MB)")
        data = file.path.read_bytes()
    except OSError as exc:
        return LoadFailure(file.source, f"cannot read file: {exc.strerror or exc}")
    loaded = decode_document(data, file.source, file.root, file.path.suffix.lower(), log=False)
    if isinstance(loaded, LoadedText):
        loaded = _with_sidecar(loaded, file.path)
        log_warnings(loaded.source, loaded.warnings)
    return loaded


def _with_sidecar(loaded: LoadedText, path: Path) -> LoadedText:
    """The sidecar's fields over what the article itself says."""
    sidecar = sidecar_for(path)
    if sidecar is None:
        return loaded
    warnings = list(loaded.warnings)
    fields = read_sidecar(sidecar, warnings)
    base = {**loaded.meta.to_json(), "title": loaded.title_hint}
    extracted = resolve([("article", {k: v for k, v in base.items() if v}), (f"sidecar {sidecar.name}", fields)])
    return replace(
        loaded, meta=extracted.meta, title_hint=extracted.title, warnings=tuple(warnings) + extracted.warnings
    )


def decode_document(data: bytes, source: str, root: str, suffix: str, *, log: bool = True) -> LoadedText | LoadFailure:
    """Decode bytes of a file with the given suffix (also used for uploads), with its metadata."""
    if not data.strip():
        return LoadFailure(source, "empty file")
    if _looks_binary(data):
        return LoadFailure(source, "binary content, not text")
    text = decode_bytes(data)
    if suffix in (".html", ".htm"):
        loaded = _extract_html(text, source, root)
    else:
        loaded = _read_text(text, source, root, "markdown" if suffix in (".md", ".markdown") else "text")
    if log and isinstance(loaded, LoadedText):
        log_warnings(source, loaded.warnings)
    return loaded


def _read_text(text: str, source: str, root: str, kind: str) -> LoadedText | LoadFailure:
    warnings: list[str] = []
    layers = []
    if kind == "markdown":
        text, front = split_front_matter(text, warnings)
        text = strip_markdown(text)
        layers = [("text", text_fields(text)), ("front matter", front)]
    else:
        layers = [("text", text_fields(text))]
    if not text.strip():
        return LoadFailure(source, "no text after decoding")
    extracted = resolve(layers, warnings)
    return LoadedText(
        source=source,
        root=root,
        text=text,
        kind=kind,
        title_hint=extracted.title,
        meta=extracted.meta,
        warnings=extracted.warnings,
    )


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return control > len(head) * 0.05


def decode_bytes(data: bytes) -> str:
    """UTF-8 (BOM stripped) when valid, else Windows-1252, else Latin-1 (never fails)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _extract_html(html: str, source: str, root: str) -> LoadedText | LoadFailure:
    import trafilatura  # heavy import, only when HTML is indexed

    warnings: list[str] = []
    html = defuse_html(html, warnings)
    text = trafilatura.extract(
        html,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        favor_precision=True,
        deduplicate=False,
    )
    if not text or len(text.split()) < 5:
        return LoadFailure(source, "no article text found in the HTML page (navigation or boilerplate only)")
    extracted = resolve([("text", text_fields(text)), ("HTML metadata", html_fields(html, warnings))], warnings)
    return LoadedText(
        source=source,
        root=root,
        text=text,
        kind="html",
        title_hint=extracted.title,
        meta=extracted.meta,
        warnings=extracted.warnings,
    )


_MD_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^```.*$", re.M), ""),  # code fences
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links -> their text
    (re.compile(r"^\s{0,3}#{1,6}\s+", re.M), ""),  # heading marks
    (re.compile(r"^\s{0,3}>\s?", re.M), ""),  # block quotes
    (re.compile(r"^\s*[-*_]{3,}\s*$", re.M), ""),  # rules
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)\*(?!\w)"), r"\1"),  # italics
    (re.compile(r"`([^`]+)`"), r"\1"),  # inline code
    (re.compile(r"<[^>\n]+>"), ""),  # inline html tags
]


def strip_markdown(text: str) -> str:
    """Markdown syntax out, words in; good enough for news articles written in Markdown."""
    for pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    return text
