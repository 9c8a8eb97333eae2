"""index/load.py: decoding, markdown, HTML extraction, and files that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.load import LoadedText, LoadFailure, SourceFile, discover, read_file, strip_markdown

GERMAN = "Die Bürger in Köln äußerten sich über Größe und Maß der Straße – „Zitat“ für 5 €."
LATIN1 = "Grüße aus Düsseldorf: Öffnungszeiten der Bäckerei ändern sich, sagte Frau Müßig."


def load(path: Path) -> LoadedText | LoadFailure:
    return read_file(SourceFile(path=path, source=path.name, root=""))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (GERMAN.encode("utf-8"), GERMAN),
        (b"\xef\xbb\xbf" + GERMAN.encode("utf-8"), GERMAN),  # BOM stripped
        (GERMAN.encode("cp1252"), GERMAN),  # Windows-1252, with „“ and €
        (LATIN1.encode("latin-1"), LATIN1),
    ],
    ids=["utf-8", "utf-8-bom", "windows-1252", "latin-1"],
)
def test_german_umlauts_decode(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "artikel.txt"
    path.write_bytes(data)
    loaded = load(path)
    assert isinstance(loaded, LoadedText)
    assert loaded.text == expected
    assert loaded.kind == "text"


def test_markdown_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "artikel.md"
    path.write_text(
        "# Kim trifft Putin\n\n"
        "> Ein **wichtiges** Treffen in *Wladiwostok*.\n\n"
        "Mehr dazu [bei der Agentur](https://example.org/a) und `Code`.\n\n"
        "![Foto](bild.jpg)\n\n"
        "---\n\n"
        "```\nprint('x')\n```\n",
        encoding="utf-8",
    )
    loaded = load(path)
    assert isinstance(loaded, LoadedText) and loaded.kind == "markdown"
    lines = [line for line in loaded.text.splitlines() if line.strip()]
    assert lines == [
        "Kim trifft Putin",
        "Ein wichtiges Treffen in Wladiwostok.",
        "Mehr dazu bei der Agentur und Code.",
        "print('x')",
    ]


@pytest.mark.parametrize(
    ("markdown", "plain"),
    [
        ("## Titel", "Titel"),
        ("[Text](http://x)", "Text"),
        ("**fett** und __auch__", "fett und auch"),
        ("5 * 3 = 15", "5 * 3 = 15"),  # a lone asterisk is arithmetic, not emphasis
        ("<b>fett</b>", "fett"),
    ],
)
def test_strip_markdown_rules(markdown: str, plain: str) -> None:
    assert strip_markdown(markdown) == plain


NAV = """<nav><ul><li><a href="/">Startseite</a></li><li><a href="/politik">Politik</a></li>
<li><a href="/wirtschaft">Wirtschaft</a></li><li><a href="/sport">Sport</a></li></ul></nav>"""

ARTICLE_HTML = f"""<!doctype html><html><head><meta charset="utf-8"><title>Kim trifft Putin | Stadtkurier</title></head>
<body>{NAV}
<article><h1>Kim trifft Putin in Wladiwostok</h1>
<p>Nordkoreas Machthaber Kim Jong Un ist mit einem gepanzerten Zug in Russland eingetroffen. Dort ist ein Treffen
mit Präsident Wladimir Putin geplant.</p>
<p>Russland erhofft sich Munition für den Krieg gegen die Ukraine, Nordkorea hofft auf Lebensmittel und Technik.</p>
</article>
<footer><a href="/impressum">Impressum</a> <a href="/datenschutz">Datenschutz</a></footer></body></html>"""


def test_html_article_is_extracted_and_navigation_dropped(tmp_path: Path) -> None:
    path = tmp_path / "seite.html"
    path.write_text(ARTICLE_HTML, encoding="utf-8")
    loaded = load(path)
    assert isinstance(loaded, LoadedText) and loaded.kind == "html"
    assert "gepanzerten Zug in Russland eingetroffen" in loaded.text
    assert "Nordkorea hofft auf Lebensmittel und Technik." in loaded.text
    for nav_word in ("Startseite", "Wirtschaft", "Impressum", "Datenschutz"):
        assert nav_word not in loaded.text
    assert "Kim trifft Putin" in loaded.title_hint


def test_html_in_windows_1252(tmp_path: Path) -> None:
    path = tmp_path / "seite.htm"
    path.write_bytes(ARTICLE_HTML.replace('charset="utf-8"', 'charset="windows-1252"').encode("cp1252"))
    loaded = load(path)
    assert isinstance(loaded, LoadedText)
    assert "Präsident Wladimir Putin" in loaded.text


def test_html_with_only_navigation_fails_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "nav.html"
    path.write_text(f"<html><head><title>Start</title></head><body>{NAV}</body></html>", encoding="utf-8")
    loaded = load(path)
    assert isinstance(loaded, LoadFailure)
    assert loaded.source == "nav.html"
    assert "no article text" in loaded.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes(range(256)) * 20, "binary"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "binary"),
        (b"", "empty"),
        (b" \n\n\t \n", "empty"),
    ],
    ids=["bytes", "png", "empty", "whitespace-only"],
)
def test_unusable_txt_files_fail_with_a_reason(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "kaputt.txt"
    path.write_bytes(data)
    loaded = load(path)
    assert isinstance(loaded, LoadFailure)
    assert reason in loaded.reason


def test_discover_names_files_relative_to_their_folder(tmp_path: Path) -> None:
    folder = tmp_path / "artikel"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("x")
    (folder / "sub" / "b.md").write_text("x")
    (folder / "bild.jpg").write_bytes(b"\xff\xd8")  # not a supported type: ignored inside folders
    (folder / ".versteckt").mkdir()
    (folder / ".versteckt" / "c.txt").write_text("x")  # hidden folders are skipped
    single = tmp_path / "einzeln.html"
    single.write_text("x")
    other = tmp_path / "daten.pdf"
    other.write_bytes(b"%PDF")
    files, failures = discover([folder, single, other, tmp_path / "fehlt"])
    assert [(f.source, f.root) for f in files] == [
        ("a.txt", str(folder.resolve())),
        ("einzeln.html", ""),
        ("sub/b.md", str(folder.resolve())),
    ]
    assert [(f.source, f.reason) for f in failures] == [
        ("daten.pdf", "unsupported file type .pdf"),
        (str(tmp_path / "fehlt"), "no such file or folder"),
    ]
