"""Bad files: each gets a defined outcome, none stops the run, the store stays consistent.

Every file is generated here. Outcomes (the table below is the specification):

| case                         | outcome                                                        |
|------------------------------|----------------------------------------------------------------|
| empty file                   | skipped: "empty file"                                          |
| whitespace only              | skipped: "empty file"                                          |
| Unicode spaces only (NBSP, zero-width) | skipped: "no article text left after removing boilerplate" |
| PNG / zip with .txt suffix   | skipped: "binary content, not text"                            |
| 50 MB of text                | skipped: "file too large (52 MB > 21 MB)" (index/load.py MAX_FILE_BYTES), not read |
| Latin-1 / Windows-1252       | indexed, umlauts (and „“ €) decoded, no mojibake               |
| UTF-8 with BOM               | indexed, no U+FEFF in text or title                            |
| one 1 MB line                | indexed in bounded time, cut into normal-sized chunks          |
| HTML with navigation only    | skipped: "no article text found in the HTML page ..."          |
| same article, two names      | both indexed, as separate sources (see below)                  |
| spaces / umlauts / ".." in a name, a sub-folder with both | indexed under that name       |
| file name in Latin-1 bytes   | indexed under the name read as Windows-1252 ("Grüße.txt")      |
| name starting with "." ("..versteckt.txt") | ignored in folders, like every hidden file (no report line) |

Same article under two names: both are indexed, each as its own source. A source is a
file; deduplicating by content would make removing, updating or pruning one file change
what the other shows. Their chunks have different ids (the id hashes the source too), so
the store never holds one id twice.

After every case the store is checked by :func:`robust_support.assert_consistent`.
"""

from __future__ import annotations

import io
import os
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import sample_sentences
from robust_support import assert_consistent

from index.load import MAX_FILE_BYTES
from rag.api import Pipeline
from rag.errors import BadInput, NotFound
from rag.settings import Settings

# Only Latin-1 characters, so the same text can be written in every encoding.
GERMAN = (
    "Bürgermeisterin öffnet die neue Brücke über die Mühlbäche\n\n"
    "Die Bürger in Köln äußerten sich am Montag über Größe und Maß der neuen Straße. "
    "Die Öffnung für den Verkehr sei für Juli geplant, sagte die Bürgermeisterin.\n\n"
    "Kritik gab es an den Kosten: Statt zwölf Millionen Euro koste der Bau nun fünfzehn Millionen. "
    "Die Grünen fordern eine Überprüfung der Ausschreibung durch das Rechnungsprüfungsamt.\n"
)
CP1252_EXTRA = "„Das ist ein guter Tag für Köln“, sagte sie. Der Eintritt zur Feier kostet 5 €.\n"
NAV_ONLY_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Startseite</title></head><body>
<nav><ul><li><a href="/">Startseite</a></li><li><a href="/politik">Politik</a></li>
<li><a href="/wirtschaft">Wirtschaft</a></li><li><a href="/sport">Sport</a></li><li><a \
href="/kultur">Kultur</a></li></ul></nav>
<div class="cookie">Wir verwenden Cookies. <button>Akzeptieren</button></div>
<footer><a href="/impressum">Impressum</a> <a href="/datenschutz">Datenschutz</a> <a \
href="/kontakt">Kontakt</a></footer>
</body></html>"""
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)


def article(n: int) -> str:
    """A distinct small German article (for the cases that are about names, not contents)."""
    return GERMAN.replace("Montag", f"Montag, dem {n}. Mai,")


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("artikel.txt", GERMAN * 20)
    return buf.getvalue()


def huge_text() -> bytes:
    line = GERMAN.encode("utf-8")
    return line * (50 * 1024 * 1024 // len(line) + 1)


def one_megabyte_line() -> bytes:
    pool = sample_sentences()
    parts, size, i = [], 0, 0
    while size < 1024 * 1024:
        sentence = pool[i % len(pool)]
        parts.append(sentence)
        size += len(sentence.encode()) + 1
        i += 1
    return " ".join(parts).encode("utf-8")


Name = str | bytes  # bytes: a raw file-system name (not UTF-8)


@dataclass(frozen=True)
class Expect:
    source: str
    outcome: str  # "indexed", "skipped" (with reason), "ignored" (hidden: neither indexed nor reported)
    reason: str = ""
    contains: tuple[str, ...] = ()  # indexed: strings the cleaned article text must contain
    excludes: tuple[str, ...] = ()  # indexed: strings it must not contain (mojibake, BOM)
    min_chunks: int = 1


@dataclass(frozen=True)
class Case:
    id: str
    files: tuple[tuple[Name, bytes], ...]
    expect: tuple[Expect, ...]
    marks: tuple = field(default=())


def cases() -> list[Case]:
    mojibake = ("Ã", "\ufffd")
    return [
        Case("empty", (("leer.txt", b""),), (Expect("leer.txt", "skipped", "empty file"),)),
        Case(
            "whitespace",
            (("nur_leerraum.txt", b" \n\n\t  \r\n  \x0b\x0c"),),
            (Expect("nur_leerraum.txt", "skipped", "empty file"),),
        ),
        Case(
            "unicode-whitespace",
            (("unicode_leer.txt", "\u00a0\u2003\n\u200b\u3000\n".encode()),),
            (Expect("unicode_leer.txt", "skipped", "no article text left"),),
        ),
        Case("png-as-txt", (("bild.txt", PNG),), (Expect("bild.txt", "skipped", "binary content, not text"),)),
        Case("zip-as-md", (("archiv.md", zip_bytes()),), (Expect("archiv.md", "skipped", "binary content, not text"),)),
        Case("50mb", (("riesig.txt", huge_text()),), (Expect("riesig.txt", "skipped", "file too large"),)),
        Case(
            "latin-1",
            (("latin1.txt", GERMAN.encode("latin-1")),),
            (
                Expect(
                    "latin1.txt",
                    "indexed",
                    contains=("Bürger in Köln äußerten", "Größe und Maß", "Überprüfung"),
                    excludes=mojibake,
                ),
            ),
        ),
        Case(
            "windows-1252",
            (("cp1252.txt", (article(2) + CP1252_EXTRA).encode("cp1252")),),
            (
                Expect(
                    "cp1252.txt",
                    "indexed",
                    contains=("„Das ist ein guter Tag für Köln“", "5 €", "Mühlbäche"),
                    excludes=mojibake,
                ),
            ),
        ),
        Case(
            "utf-8-bom",
            (("bom.txt", b"\xef\xbb\xbf" + article(3).encode("utf-8")),),
            (Expect("bom.txt", "indexed", contains=("Bürgermeisterin öffnet",), excludes=("\ufeff", *mojibake)),),
        ),
        Case(
            "1mb-line",
            (("eine_zeile.txt", one_megabyte_line()),),
            (Expect("eine_zeile.txt", "indexed", min_chunks=100),),
            marks=(pytest.mark.slow,),
        ),
        Case(
            "html-navigation-only",
            (("navigation.html", NAV_ONLY_HTML.encode()),),
            (Expect("navigation.html", "skipped", "no article text found"),),
        ),
        Case(
            "same-article-two-names",
            (("zwilling_a.txt", article(4).encode()), ("zwilling_b.txt", article(4).encode())),
            (Expect("zwilling_a.txt", "indexed"), Expect("zwilling_b.txt", "indexed")),
        ),
        Case(
            "names",
            (
                ("mit Leerzeichen im Namen.txt", article(5).encode()),
                ("Größe Übersicht.txt", article(6).encode()),
                (unicodedata.normalize("NFD", "Überschrift NFD.txt"), article(7).encode()),
                ("bericht..final.txt", article(8).encode()),
                ("Ordner mit Ä/unter ordner/tief ß.md", article(9).encode()),
                (b"Gr\xfc\xdfe aus D\xfcsseldorf.txt", article(10).encode()),  # Latin-1 file name
                ("..versteckt.txt", article(11).encode()),
            ),
            (
                Expect("mit Leerzeichen im Namen.txt", "indexed"),
                Expect("Größe Übersicht.txt", "indexed"),
                Expect(unicodedata.normalize("NFD", "Überschrift NFD.txt"), "indexed"),
                Expect("bericht..final.txt", "indexed"),
                Expect("Ordner mit Ä/unter ordner/tief ß.md", "indexed"),
                Expect("Grüße aus Düsseldorf.txt", "indexed"),
                Expect("..versteckt.txt", "ignored"),
            ),
        ),
    ]


def write_files(folder: Path, case: Case) -> None:
    for name, data in case.files:
        raw = os.path.join(os.fsencode(folder), name if isinstance(name, bytes) else os.fsencode(name))
        os.makedirs(os.path.dirname(raw), exist_ok=True)
        with open(raw, "wb") as out:
            out.write(data)


def check_outcome(pipeline: Pipeline, report, case: Case) -> None:
    failed = {f.source: f.reason for f in report.failed}
    for reason in failed.values():
        assert reason and "\n" not in reason and len(reason) < 200, f"not a one-line reason: {reason!r}"
    indexed = {a.source: a for a in pipeline.sources()}
    for exp in case.expect:
        if exp.outcome == "skipped":
            assert exp.source in failed, f"{exp.source}: expected skipped, report: {report.to_json()}"
            assert exp.reason in failed[exp.source], failed[exp.source]
            assert exp.source not in indexed
        elif exp.outcome == "ignored":
            assert exp.source not in failed and exp.source not in indexed
            assert exp.source not in report.added
        else:
            assert exp.source in report.added, f"{exp.source}: expected indexed, report: {report.to_json()}"
            assert exp.source not in failed
            assert indexed[exp.source].chunks >= exp.min_chunks
            text = pipeline.article(exp.source).text
            title = indexed[exp.source].title
            for needle in exp.contains:
                assert needle in text, needle
            for needle in exp.excludes:
                assert needle not in text and needle not in title, needle


def fake_pipeline(base: Path) -> Pipeline:
    return Pipeline(Settings(store=base / "store", cache_dir=base / "cache", embedder="fake", generator="extractive"))


CASES = cases()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_file_alone_with_a_good_one(tmp_path: Path, case: Case) -> None:
    """Each case in a fresh store, beside a good article: the good one is always indexed."""
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "begleiter.txt").write_text(article(99), encoding="utf-8")
    write_files(folder, case)
    pipeline = fake_pipeline(tmp_path)
    report = pipeline.index([folder])
    assert "begleiter.txt" in report.added
    check_outcome(pipeline, report, case)
    assert_consistent(pipeline)
    # A second run changes nothing and reports the same failures.
    again = pipeline.index([folder])
    assert not again.added and not again.updated
    assert sorted(again.unchanged) == sorted(report.added)
    assert sorted((f.source, f.reason) for f in again.failed) == sorted((f.source, f.reason) for f in report.failed)
    assert_consistent(pipeline)


def test_same_article_under_two_names_are_separate_sources(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    case = next(c for c in CASES if c.id == "same-article-two-names")
    write_files(folder, case)
    pipeline = fake_pipeline(tmp_path)
    pipeline.index([folder])
    a, b = pipeline.article("zwilling_a.txt"), pipeline.article("zwilling_b.txt")
    assert a.text == b.text
    ids_a, ids_b = pipeline.store.chunk_ids("zwilling_a.txt"), pipeline.store.chunk_ids("zwilling_b.txt")
    assert ids_a and ids_b and not ids_a & ids_b
    pipeline.remove("zwilling_a.txt")  # removing one leaves the other whole
    assert [s.source for s in pipeline.sources()] == ["zwilling_b.txt"]
    assert pipeline.store.chunk_ids("zwilling_b.txt") == ids_b
    assert_consistent(pipeline)


def test_size_limit_is_checked_before_reading() -> None:
    assert len(huge_text()) > MAX_FILE_BYTES  # the 50 MB case really is over the limit


@pytest.mark.slow
def test_all_cases_one_after_another_in_one_store(tmp_path: Path) -> None:
    """The table applied cumulatively: after each case the folder is re-indexed into the
    same store, earlier articles stay unchanged, and the store is consistent every time.
    Then one fresh run over the finished folder: every bad file at once stops nothing."""
    folder = tmp_path / "articles"
    folder.mkdir()
    pipeline = fake_pipeline(tmp_path / "cumulative")
    indexed: set[str] = set()
    skipped: set[str] = set()
    for case in CASES:
        write_files(folder, case)
        report = pipeline.index([folder])
        check_outcome(pipeline, report, case)
        new = {e.source for e in case.expect if e.outcome == "indexed"}
        assert set(report.added) == new, case.id
        assert set(report.unchanged) == indexed, case.id
        indexed |= new
        skipped |= {e.source for e in case.expect if e.outcome == "skipped"}
        assert {f.source for f in report.failed} == skipped, case.id
        assert {a.source for a in pipeline.sources()} == indexed
        assert_consistent(pipeline)

    fresh = fake_pipeline(tmp_path / "fresh")
    report = fresh.index([folder])
    assert set(report.added) == indexed
    assert {f.source for f in report.failed} == skipped
    assert_consistent(fresh)
    assert assert_consistent(pipeline) == assert_consistent(fresh)


# ----- uploads: names and sizes from users
@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("../../ausbruch.txt", "ausbruch.txt"),
        ("..\\..\\windows\\system.txt", "system.txt"),
        ("/etc/passwd.txt", "passwd.txt"),
        ("unter/../../../oben.md", "oben.md"),
        ("..versteckt.txt", "versteckt.txt"),
        ("Größe mit Leerzeichen.txt", "Größe mit Leerzeichen.txt"),
        ("steuer\x00zeichen\n.txt", "steuerzeichen.txt"),
    ],
)
def test_upload_names_cannot_leave_the_store(tmp_path: Path, given: str, stored: str) -> None:
    base = tmp_path / "app"
    pipeline = fake_pipeline(base)
    before = {p for p in tmp_path.rglob("*") if not p.is_relative_to(base)}
    report = pipeline.index_upload(given, article(20).encode())
    assert report.added == [stored]
    assert [a.source for a in pipeline.sources()] == [stored]
    assert {p for p in tmp_path.rglob("*") if not p.is_relative_to(base)} == before  # nothing written outside
    assert_consistent(pipeline)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", "", "../store"])
def test_lookups_by_user_names_never_touch_files(tmp_path: Path, name: str) -> None:
    pipeline = fake_pipeline(tmp_path)
    pipeline.index_upload("artikel.txt", article(21).encode())
    with pytest.raises(NotFound):
        pipeline.article(name)
    with pytest.raises(NotFound):
        pipeline.remove(name)
    assert_consistent(pipeline)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("gross.txt", b"Wort " * (1024 * 1024 // 5 + 1), "larger than the upload limit"),
        ("programm.exe", b"MZ\x90\x00", "Unsupported file type .exe"),
        ("ohne_endung", article(22).encode(), "Unsupported file type (none)"),
        ("bericht.pdf", b"%PDF-1.7", "Unsupported file type .pdf"),
        ("bild.txt", PNG, "binary content"),
        ("leer.txt", b"   \n", "empty file"),
        ("navigation.html", NAV_ONLY_HTML.encode(), "no article text"),
        ("..", article(23).encode(), "no usable name"),
        ("/", article(23).encode(), "no usable name"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    pipeline = Pipeline(
        Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache", embedder="fake", max_upload_mb=1)
    )
    with pytest.raises(BadInput) as err:
        pipeline.index_upload(name, data)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert pipeline.sources() == []
    assert_consistent(pipeline)
