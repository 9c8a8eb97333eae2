"""Article metadata at ingest (index/meta.py, index/load.py): every format of the news
fixture corpus, the plain-text patterns, dates, front matter, sidecars, bad metadata, and
re-indexing changed metadata without re-embedding. Real files, real Chroma, fake embedder."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import CountingEmbedder

from index.clean import clean_article
from index.embed import FakeEmbedder
from index.load import LoadedText, SourceFile, discover, read_file
from index.meta import resolve, split_front_matter, text_fields
from rag.api import Pipeline
from rag.filters import normalize_date
from rag.settings import Settings
from rag.types import ArticleMeta
from tests.news_corpus import BRIDGE, EXPECTED, FLOOD, NEWS_DIR, POOL, SIDECARS

BODY = (
    "Die Stadtverwaltung hat am Montag neue Parkgebühren beschlossen. Ab März kostet eine Stunde in der "
    "Innenstadt zwei Euro, teilte ein Sprecher mit. Anwohner bekommen einen Ausweis für 30 Euro im Jahr."
)


def load(path: Path) -> LoadedText:
    loaded = read_file(SourceFile(path=path, source=path.name, root=""))
    assert isinstance(loaded, LoadedText), loaded
    return loaded


def fields_of(loaded: LoadedText) -> tuple[str, ...]:
    title = clean_article(loaded.text, loaded.title_hint).title
    m = loaded.meta
    return (title, m.outlet, m.url, m.author, m.published, m.updated)


# ----- the fixture corpus, one article per row
@pytest.mark.parametrize("source", sorted(EXPECTED))
def test_fixture_article_metadata(source: str) -> None:
    loaded = load(NEWS_DIR / source)
    assert fields_of(loaded) == EXPECTED[source]
    assert loaded.warnings == ()


def test_fixture_corpus_is_what_its_docstring_says() -> None:
    files, failures = discover([NEWS_DIR])
    sources = [f.source for f in files]
    assert failures == [] and sorted(sources) == sorted(EXPECTED) and len(sources) >= 12
    assert not set(SIDECARS) & set(sources)  # sidecars are read with their article, never indexed
    kinds = {load(f.path).kind for f in files}
    assert kinds == {"html", "markdown", "text"}
    for story in (BRIDGE, POOL):  # one story, three outlets
        assert len({EXPECTED[s][1] for s in story}) == 3
    original, update = (load(NEWS_DIR / s) for s in FLOOD)
    assert original.meta.url == update.meta.url and update.meta.updated > update.meta.published
    assert "6,20 Meter" in original.text and "6,85 Meter" in update.text and "6,20" not in update.text


# ----- plain-text lines
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Stand: 09.11.2022 19:45 Uhr\n\nText.", {"updated": "09.11.2022 19:45 Uhr"}),
        ("Titel\n31.08.2021, 18:06 Uhr\nText.", {"published": "31.08.2021, 18:06 Uhr"}),
        ("Titel\n12. September 2023\nText.", {"published": "12. September 2023"}),
        ("Titel\n2023-09-12\nText.", {"published": "2023-09-12"}),
        ("Titel\nVeröffentlicht am 03.10.2023, 06:10 Uhr\nText.", {"published": "03.10.2023, 06:10 Uhr"}),
        ("Titel\nText.\nZuletzt aktualisiert am 04.10.2023\n", {"updated": "04.10.2023"}),
        ("Titel\nText.\nQuelle: tagesschau.de", {"outlet": "tagesschau.de"}),
        ("Titel\nVon: Christina Denk\nText.", {"author": "Christina Denk"}),
        # not metadata: a sentence with a date, a "Quelle" sentence, a long line, a date in the middle
        ("Titel\nAm 12.09.2023 traf Kim in Wladiwostok ein.\n", {}),
        ("Titel\nQuelle: Nach Angaben der Polizei. Sie ermittelt weiter.\n", {}),
        ("Titel\n" + "Quelle: " + "sehr " * 30 + "lang\n", {}),
        (
            "\n".join(["Titel", *[f"Absatz {i}." for i in range(8)], "12.09.2023", *[f"Satz {i}." for i in range(8)]]),
            {},
        ),
    ],
    ids=[
        "stand",
        "date-time-line",
        "date-words",
        "iso-line",
        "veroeffentlicht",
        "aktualisiert",
        "quelle",
        "von",
        "sentence-with-date",
        "quelle-sentence",
        "long-quelle",
        "date-in-the-middle",
    ],
)
def test_text_lines(text: str, expected: dict) -> None:
    assert text_fields(text) == expected


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("2023-09-12", "2023-09-12"),
        ("2023-09-12T08:15:00+0200", "2023-09-12T08:15+02:00"),
        ("2023-09-12T08:15:30Z", "2023-09-12T08:15:30+00:00"),
        ("12.09.2023", "2023-09-12"),
        ("12.09.2023 19:45", "2023-09-12T19:45"),
        ("9.11.2022, 19:45 Uhr", "2022-11-09T19:45"),
        ("12. September 2023", "2023-09-12"),
        ("3. März 2021", "2021-03-03"),
        (date(2024, 1, 17), "2024-01-17"),
    ],
)
def test_dates_are_normalized_as_written(value: object, iso: str) -> None:
    assert normalize_date(value) == iso  # no time added to a day, no zone added to a local time


@pytest.mark.parametrize(
    "value",
    [
        "31.02.2023",
        "gestern",
        "2023-13-01",
        "12.09.23",
        "1850-01-01",
        (date.today() + timedelta(days=30)).isoformat(),
        20230912,
        ["2023-09-12"],
        "",
    ],
)
def test_bad_dates_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        normalize_date(value)


# ----- Markdown front matter
def test_front_matter_is_read_and_removed() -> None:
    warnings: list[str] = []
    text = (
        "---\ntitle: Neue Parkgebühren\nauthors: [Anna Beispiel, Ben Probe]\ndate: 2024-02-01\n"
        "lastmod: 2024-02-02 08:30:00\nsite_name: Stadtblatt\ntags: [Verkehr]\n---\n\n" + BODY
    )
    body, fields = split_front_matter(text, warnings)
    assert body == BODY and warnings == []
    got = resolve([("front matter", fields)])
    assert got.title == "Neue Parkgebühren"
    assert got.meta == ArticleMeta(
        outlet="Stadtblatt", author="Anna Beispiel, Ben Probe", published="2024-02-01", updated="2024-02-02T08:30"
    )


@pytest.mark.parametrize("text", ["---\nEin Absatz zwischen zwei Linien.\n---\n" + BODY, BODY, "---\n" + BODY])
def test_text_that_is_not_front_matter_stays(text: str) -> None:
    warnings: list[str] = []
    assert split_front_matter(text, warnings) == (text, {}) and warnings == []


# ----- sidecars
def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_sidecar_overrides_and_clears(tmp_path: Path) -> None:
    article = write(
        tmp_path,
        "park.md",
        "---\ntitle: Alt\nauthor: Anna Beispiel\noutlet: Stadtblatt\ndate: 2024-02-01\n---\n" + BODY,
    )
    write(
        tmp_path,
        "park.meta.json",
        json.dumps(
            {
                "title": "Neuer Titel",
                "author": None,
                "outlet": "Stadtblatt Online",
                "url": "https://stadtblatt.example/park",
            }
        ),
    )
    loaded = load(article)
    assert loaded.title_hint == "Neuer Titel" and loaded.warnings == ()
    assert loaded.meta == ArticleMeta(
        outlet="Stadtblatt Online", url="https://stadtblatt.example/park", author="", published="2024-02-01"
    )
    # the full-name sidecar wins over the stem one
    write(tmp_path, "park.md.meta.yaml", "outlet: Stadtblatt Print\n")
    assert load(article).meta.outlet == "Stadtblatt Print"


# ----- bad metadata: ignored with a warning, the article is indexed
BIG = "Ab cd " * 1_800_000  # 10.8 MB: more than lxml takes in one node


def bad_cases(folder: Path) -> dict[str, str]:
    """source -> a word the warning must contain."""
    write(folder, "bad-date.md", "---\ntitle: Parken\ndate: 31.02.2024\n---\n" + BODY)
    write(folder, "bad-stand.txt", "Parken wird teurer in der Innenstadt\nStand: 31.02.2024 10:00 Uhr\n\n" + BODY)
    write(folder, "bad-yaml.md", "---\ntitle: [Parken\n---\n" + BODY)
    write(folder, "list-sidecar.txt", BODY)
    write(folder, "list-sidecar.meta.json", '["Stadtblatt", "2024-02-01"]')
    write(folder, "broken-sidecar.txt", BODY)
    write(folder, "broken-sidecar.meta.json", '{"outlet": "Stadtblatt",')
    write(folder, "typed-sidecar.txt", BODY)
    write(folder, "typed-sidecar.meta.yaml", "author: 5\npublished: [2024]\noutlet: Stadtblatt\ncolour: blau\n")
    page = (
        "<html><head><title>Parken wird teurer</title>{}</head><body><article><h1>Parken wird teurer</h1>"
        f"<p>{BODY}</p></article></body></html>"
    )
    write(
        folder,
        "huge-meta.html",
        page.format(f'<meta property="og:title" content="{BIG}"><meta property="og:site_name" content="Stadtblatt">'),
    )
    write(
        folder,
        "huge-jsonld.html",
        page.format(f'<script type="application/ld+json">{{"@type": "NewsArticle", "headline": "{BIG}"}}</script>'),
    )
    write(folder, "long-author.html", page.format(f'<meta name="author" content="{"Anna Beispiel " * 100}">'))
    return {
        "bad-date.md": "published",
        "bad-stand.txt": "updated",
        "bad-yaml.md": "YAML",
        "list-sidecar.txt": "list",
        "broken-sidecar.txt": "JSON",
        "typed-sidecar.txt": "author",
        "huge-meta.html": "MB",
        "huge-jsonld.html": "MB",
        "long-author.html": "author",
    }


def test_bad_metadata_never_fails_an_article(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    expected = bad_cases(folder)
    with Pipeline(settings) as pipeline:
        report = pipeline.index([folder])
        assert report.failed == []
        assert sorted(report.added) == sorted(expected)
        warned: dict[str, str] = {}
        for w in report.warnings:
            warned[w.source] = warned.get(w.source, "") + w.reason + "; "
        assert set(warned) == set(expected)
        assert "colour" in warned["typed-sidecar.txt"] and "published" in warned["typed-sidecar.txt"]
        for source, word in expected.items():
            assert word in warned.get(source, ""), (source, warned.get(source))
        infos = {a.source: a for a in pipeline.sources()}
        assert infos["bad-date.md"].meta.published == "" and infos["bad-date.md"].title == "Parken"
        assert infos["typed-sidecar.txt"].meta == ArticleMeta(outlet="Stadtblatt")  # the good field stays
        assert infos["huge-meta.html"].meta.outlet == "Stadtblatt"
        assert infos["long-author.html"].meta.author == ""
        for source in expected:  # every one is searchable with its text
            assert pipeline.article(source).text.count("Parkgebühren") == 1
        hits = pipeline.retrieve("Wie teuer ist der Anwohnerausweis?", k=len(expected))
        # The nine share one text: near-duplicates, folded into one passage that lists the other eight.
        assert {q.source for p in hits for q in (p, *p.also_in)} == set(expected)


def test_cli_prints_metadata_warnings(cli, tmp_path: Path) -> None:
    write(tmp_path, "bad-date.md", "---\ntitle: Parken\ndate: 31.02.2024\n---\n" + BODY)
    result = cli("--store", tmp_path / "store", "--embedder", "fake", "index", tmp_path / "bad-date.md")
    assert result.code == 0, result.err
    assert "1 added" in result.out
    assert "warning bad-date.md: front matter: published date ignored" in result.out


# ----- re-indexing: metadata changes without re-embedding
def test_changed_metadata_is_rewritten_without_embedding(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "news"
    shutil.copytree(NEWS_DIR, folder)
    counting = CountingEmbedder(FakeEmbedder())
    with Pipeline(settings, embedder=counting) as pipeline:
        first = pipeline.index([folder])
        assert len(first.added) == len(EXPECTED) and counting.passages
        source = "ostsee-welle-faehre.txt"
        chunk_ids = pipeline.store.chunk_ids(source)
        counting.passages.clear()

        (folder / "ostsee-welle-faehre.meta.json").write_text('{"outlet": "Radio Nordost", "author": "Lena Hahn"}')
        second = pipeline.index([folder])
        assert second.updated == [source] and second.metadata_only == [source]
        assert second.chunks == 0 and counting.passages == []  # nothing embedded
        assert pipeline.store.chunk_ids(source) == chunk_ids  # same chunks, same vectors
        record = pipeline.article(source)
        assert record.meta == ArticleMeta(outlet="Radio Nordost", author="Lena Hahn", published="2021-08-31T18:06")
        stored = pipeline.store.get_chunks(sorted(chunk_ids))
        assert {c.meta for c, _ in stored.values()} == {record.meta}  # the chunks carry it too (url gone)
        found = pipeline.retrieve("Fähre nach Gedser", k=3, outlet="Radio Nordost", until="2021")
        assert found and {p.source for p in found} == {source}

        third = pipeline.index([folder])
        assert third.updated == [] and len(third.unchanged) == len(EXPECTED)

        text = folder / source  # a changed text is a changed article: embedded again
        text.write_text(text.read_text(encoding="utf-8").replace("600 Passagiere", "800 Passagiere"), encoding="utf-8")
        fourth = pipeline.index([folder])
        assert fourth.updated == [source] and fourth.metadata_only == [] and counting.passages


def test_upload_reads_metadata_and_reports_warnings(tmp_path: Path) -> None:
    import httpx

    from rag.server import create_app
    from tests.server_support import LiveServer, make_pipeline

    pipeline = make_pipeline(tmp_path)
    pipeline.index([NEWS_DIR / "leserbrief-radweg.txt"])
    page = "---\ntitle: Parken wird teurer\noutlet: Stadtblatt\ndate: 31.02.2024\n---\n" + BODY
    with LiveServer(create_app(pipeline, ui=False)) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/v1/articles", files={"file": ("parken.md", page.encode("utf-8"), "text/markdown")})
        assert r.status_code == 201, r.text
        report = r.json()
        assert report["added"] == ["parken.md"] and report["failed"] == []
        assert [w["source"] for w in report["warnings"]] == ["parken.md"] and "published" in report["warnings"][0][
            "reason"
        ]
        article = client.get("/v1/articles/parken.md").json()
        assert article["title"] == "Parken wird teurer" and not article["text"].startswith("---")
        assert article["meta"] == {"outlet": "Stadtblatt", "url": "", "author": "", "published": "", "updated": ""}
    pipeline.close()
