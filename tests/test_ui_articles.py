"""The Articles tab as news (issue 14 part 5) and the copies in the sources panel, through the
chat's handlers on a real store: newest first, outlet and date on every row, a filter by outlet,
the copies of one story kept together, older versions marked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.api import Pipeline
from rag.settings import Settings
from rag.types import ArticleMeta
from tests.news_corpus import FLOOD, NEWS_DIR
from tests.test_stories import COPIES, QUESTION, write_copies, write_others
from tests.test_ui_render import XSS, no_live_markup
from ui import articles  # plain HTML: needs no gradio

app = pytest.importorskip("ui.app")

# Newest first by the article's own date (published, else updated); the flood story (one URL) as a
# block placed by its update; the undated reader's letter last.
BY_DATE = [
    "radio-nordost-hallenbad.txt",  # updated 2024-01-18 07:15
    "lausitzer-echo-hallenbad.txt",  # 2024-01-17 21:12
    "spreewald-zeitung-hallenbad.md",  # 2024-01-17
    "elbtal-nachrichten-elbpegel-update.html",  # 2024-01-05 08:00, updated 18:30
    "elbtal-nachrichten-elbpegel.html",  # 2024-01-05 08:00
    "radio-nordost-sturm.txt",
    "radio-nordost-havelbruecke.txt",  # updated 2023-09-12 16:40
    "elbtal-nachrichten-havelbruecke.html",  # 11:05
    "havelland-kurier-havelbruecke.html",  # 09:30
    "uckermark-bote-windpark.md",
    "baltic-morning-post-port.html",
    "ostsee-welle-faehre.txt",
    "leserbrief-radweg.txt",  # undated
]


def rows(table: str) -> list[str]:
    return re.findall(r'<tr class="art[^"]*" data-source="([^"]+)"', table)


def row(table: str, source: str) -> str:
    return re.search(rf'<tr class="art[^"]*" data-source="{re.escape(source)}">(.*?)</tr>', table).group(1)


@pytest.fixture
def news(settings: Settings) -> Pipeline:
    pipeline = Pipeline(settings.with_(generator="extractive"))
    pipeline.index([NEWS_DIR])
    yield pipeline
    pipeline.close()


def test_articles_are_newest_first_with_outlet_and_date(news: Pipeline) -> None:
    table, remove, outlets, shown = app.article_views(news)
    no_live_markup(table)
    assert rows(table) == BY_DATE
    assert "13 articles indexed; 1 story told by several articles, kept together." in table
    assert '<td class="art-date">2023-09-12</td><td class="art-outlet">Havelland Kurier</td>' in row(
        table, "havelland-kurier-havelbruecke.html"
    )
    assert '<td class="art-date">updated 2023-09-12</td><td class="art-outlet">Radio Nordost</td>' in row(
        table, "radio-nordost-havelbruecke.txt"
    )  # only a "Stand:" line: its last update
    assert "2024-01-05 (updated 2024-01-05)" in row(table, FLOOD[1])
    assert '<td class="art-date unknown">undated</td><td class="art-outlet unknown">unknown outlet</td>' in row(
        table, "leserbrief-radweg.txt"
    )
    assert shown["value"] == [] and "Radio Nordost" in shown["choices"]


def test_an_update_and_its_original_are_one_story_block(news: Pipeline) -> None:
    table = app.article_views(news)[0]
    story = re.search(r'<tr class="art-story"><td colspan="6">(.*?)</td></tr>', table).group(1)
    assert story.startswith("Story: Hochwasser: Elbpegel in Dresden steigt auf 6,85 Meter")
    assert "(2 articles: Elbtal Nachrichten)" in story
    position = table.index('class="art-story"')
    assert table.index(f'data-source="{FLOOD[1]}"') > position and table.index(f'data-source="{FLOOD[0]}"') > position
    assert 'class="art in-story"' in table
    assert '<span class="art-version">latest version</span>' in row(table, FLOOD[1])
    assert '<span class="art-version">older version</span>' in row(table, FLOOD[0])
    assert "art-version" not in row(table, "radio-nordost-sturm.txt")


def test_the_outlet_filter_keeps_its_articles_and_their_story_line(news: Pipeline) -> None:
    table, _, chat_outlets, shown = app.article_views(news, ["Ostsee Welle"], ["Radio Nordost", "Gone Gazette"])
    assert rows(table) == ["radio-nordost-hallenbad.txt", "radio-nordost-sturm.txt", "radio-nordost-havelbruecke.txt"]
    assert "Showing 3 from Radio Nordost." in table
    assert shown["value"] == ["Radio Nordost"] and chat_outlets["value"] == ["Ostsee Welle"]  # two filters
    table = app.article_views(news, None, ["Elbtal Nachrichten", "Baltic Morning Post"])[0]
    assert rows(table) == [FLOOD[1], FLOOD[0], "elbtal-nachrichten-havelbruecke.html", "baltic-morning-post-port.html"]
    assert table.count('class="art-story"') == 1


def test_agency_copies_are_one_story_and_the_filter_says_how_many_it_shows(settings: Settings, tmp_path: Path) -> None:
    with Pipeline(settings.with_(generator="extractive")) as pipeline:
        pipeline.index([write_others(write_copies(tmp_path / "news"))])
        table = app.article_views(pipeline)[0]
        assert table.count('class="art-story"') == 1 and table.count('class="art in-story"') == len(COPIES)
        assert (
            "(6 articles: Abendzeitung, Kurier, Morgenpost, Stadtanzeiger, RBB Welle, Tagesblatt)" in table
        )  # newest first
        first = rows(table)[: len(COPIES)]
        assert first == [
            "abendzeitung.md",
            "kurier.md",
            "morgenpost.md",
            "stadtanzeiger.md",
            "rbb-welle.md",
            "tagesblatt.md",
        ]
        only = app.article_views(pipeline, None, ["Kurier"])[0]
        assert rows(only) == ["kurier.md"] and "(6 articles, 1 shown: Abendzeitung, Kurier" in only

        # The chat's sources panel lists the copies the passage stands for, with outlet and date.
        *_, last = app.chat_turn(pipeline, QUESTION, [], [], "extractive", 3, False)
        panel = last[3]
        no_live_markup(panel)
        assert "Also in 5 other articles:" in panel
        for name in ("Tagesblatt", "RBB Welle", "Stadtanzeiger", "Morgenpost", "Kurier"):
            assert f'<span class="src-outlet">{name}</span>' in panel
        assert last[2][-1]["answer"].passages[0].source == "abendzeitung.md"


def test_the_table_escapes_what_articles_say() -> None:
    class Info:
        def __init__(self, n: int, payload: str) -> None:
            self.source, self.title, self.chunks, self.chars = f"{payload}-{n}.txt", payload, 1, 10
            self.meta, self.story = ArticleMeta(outlet=payload, url=payload, published=f"2024-01-0{n}"), "s-same"

    for payload in XSS:
        html = articles.articles_html([Info(1, payload), Info(2, payload)], [payload])
        no_live_markup(html)
        assert "Story: " in html and "older version" in html
