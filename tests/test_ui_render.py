"""The chat page's HTML rendering (ui.render): escaping, highlighting, citation links. Pure, quick."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from rag.types import Answer, ArticleMeta, Citation, Passage
from ui import render

XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "<svg/onload=alert(1)>",
    '"><a href="javascript:alert(1)">x</a>',
    "<b onmouseover='alert(1)'>fett</b>",
    "&lt;already escaped&gt; & <iframe src=//evil>",
]


def passage(text: str, start: int = 100, n: int = 1, source: str = "a.txt", title: str = "Titel") -> Passage:
    return Passage(
        id=f"p{n}",
        source=source,
        title=title,
        text=text,
        start=start,
        end=start + len(text),
        score=0.5,
        dense_score=0.81,
        keyword_score=3.2,
    )


def cite(p: Passage, n: int, a: int, b: int) -> Citation:
    """A citation of the passage-relative span [a, b) (stored, like the real ones, as article offsets)."""
    return Citation(n=n, passage_id=p.id, source=p.source, start=p.start + a, end=p.start + b, quote=p.text[a:b])


ALLOWED_TAGS = {
    "div",
    "p",
    "span",
    "mark",
    "a",
    "details",
    "summary",
    "section",
    "h3",
    "h4",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "code",
    "ul",
    "li",
    "em",
}
ALLOWED_ATTRS = {"class", "id", "href", "title", "open", "hidden", "data-turn", "data-source", "colspan"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def no_live_markup(html: str) -> None:
    """Parsed as a browser would: only our own tags and attributes, links only to #src-t-n."""
    parser = _Tags()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs:
            assert name in ALLOWED_ATTRS, (tag, name, html)
            if name == "href":
                assert re.fullmatch(r"#src-\d+-\d+", value or ""), (value, html)


# ----- highlight
@pytest.mark.parametrize(
    ("text", "spans", "expected"),
    [
        ("Kim trifft Putin.", [(0, 3)], "<mark>Kim</mark> trifft Putin."),  # at the start
        ("Kim trifft Putin.", [(11, 17)], "Kim trifft <mark>Putin.</mark>"),  # at the end
        ("Kim trifft Putin.", [(0, 17)], "<mark>Kim trifft Putin.</mark>"),  # the whole passage
        ("Kim trifft Putin.", [(4, 10)], "Kim <mark>trifft</mark> Putin."),
        ("Kim trifft Putin.", [], "Kim trifft Putin."),
        ("Kim trifft Putin.", [(4, 4)], "Kim trifft Putin."),  # empty span
        ("Kim trifft Putin.", [(-5, 3), (11, 99)], "<mark>Kim</mark> trifft <mark>Putin.</mark>"),  # clipped
        ("Kim trifft Putin.", [(0, 6), (4, 10)], "<mark>Kim trifft</mark> Putin."),  # overlapping: merged
        ("Kim trifft Putin.", [(11, 17), (0, 3)], "<mark>Kim</mark> trifft <mark>Putin.</mark>"),  # unsorted
        ("a<b>c", [(1, 4)], "a<mark>&lt;b&gt;</mark>c"),
        (
            'x <img src=x onerror="alert(1)"> y',
            [(2, 32)],
            "x <mark>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</mark> y",
        ),
        ("<script>alert(1)</script>", [(0, 8)], "<mark>&lt;script&gt;</mark>alert(1)&lt;/script&gt;"),
        ("Tom & Jerry", [(4, 5)], "Tom <mark>&amp;</mark> Jerry"),
    ],
)
def test_highlight(text: str, spans: list[tuple[int, int]], expected: str) -> None:
    assert render.highlight(text, spans) == expected


@pytest.mark.parametrize("payload", XSS)
def test_highlight_escapes_untrusted_text(payload: str) -> None:
    html = render.highlight(f"Vorher {payload} nachher", [(0, 6), (7, 7 + len(payload))])
    no_live_markup(html)
    assert html.count("<mark>") == 2


# ----- passages and citations
@pytest.mark.parametrize(
    ("where", "expected_mark"),
    [
        ("start", "<mark>Kim kommt.</mark>"),
        ("end", "<mark>Putin wartet.</mark>"),
        ("middle", "<mark>Es regnet.</mark>"),
    ],
)
def test_passage_highlights_the_cited_span_at_start_middle_and_end(where: str, expected_mark: str) -> None:
    p = passage("Kim kommt. Es regnet. Putin wartet.", start=40)
    span = {"start": (0, 10), "middle": (11, 21), "end": (22, 35)}[where]
    c = cite(p, 1, *span)
    assert c.quote == p.text[c.start - p.start : c.end - p.start]
    html = render.passage_html(p, 1, 1, [c], show_scores=False)
    assert expected_mark in html
    assert html.count("<mark>") == 1
    assert '<details class="src cited" id="src-1-1" open>' in html


def test_uncited_passage_is_collapsed_and_scores_are_optional() -> None:
    p = passage("Nur ein Satz.")
    closed = render.passage_html(p, 3, 2, [], show_scores=False)
    assert '<details class="src" id="src-2-3">' in closed and "<mark>" not in closed and "score" not in closed
    scored = render.passage_html(p, 3, 2, [], show_scores=True)
    assert "score 0.5000" in scored and "dense 0.810" in scored and "keyword 3.20" in scored


@pytest.mark.parametrize("payload", XSS)
def test_passage_escapes_title_source_and_text(payload: str) -> None:
    p = passage(f"Text {payload} Ende.", source=f"{payload}.txt", title=f"Titel {payload}")
    html = render.passage_html(p, 1, 1, [cite(p, 1, 0, 4)], show_scores=True)
    no_live_markup(html)


def answer(
    text: str,
    passages: tuple[Passage, ...],
    citations: tuple[Citation, ...],
    abstained: bool = False,
    question: str = "Frage?",
) -> Answer:
    return Answer(
        question=question,
        answer=text,
        abstained=abstained,
        citations=citations,
        passages=passages,
        standalone_question=question,
    )


def test_answer_markers_link_to_their_turns_sources() -> None:
    p1, p2 = passage("Eins.", n=1), passage("Zwei.", n=2, start=300)
    a = answer("Erstens [1]. Beides [1, 2]. Falsch [7].", (p1, p2), (cite(p1, 1, 0, 5), cite(p2, 2, 0, 5)))
    html = render.answer_html(a, turn=3)
    links = re.findall(r'<a class="cite" href="#src-3-(\d)"', html)
    assert links == ["1", "1", "2"]
    assert "Falsch [7]." in html  # a marker without a passage stays plain text
    assert "rag-abstained" not in html


@pytest.mark.parametrize("payload", XSS)
def test_answer_and_draft_escape_model_output(payload: str) -> None:
    p = passage("Eins.")
    for html in (
        render.answer_html(answer(f"Satz {payload} [1].", (p,), ()), 1),
        render.draft_html(f"Satz {payload} [1"),
    ):
        no_live_markup(html)
    assert render.user_html(payload).count("<") == 2  # only the wrapper's own tags


def test_abstention_is_a_distinct_notice_without_links() -> None:
    a = answer("Dazu enthalten die Artikel keine Angabe.", (passage("Eins."),), (), abstained=True)
    html = render.answer_html(a, 1)
    assert 'class="rag-abstained abstained"' in html and "No answer in the articles" in html
    assert "cite" not in html


def test_error_message_is_escaped() -> None:
    html = render.error_html("Cannot reach <http://127.0.0.1:9/v1>")
    assert "rag-error" in html and "&lt;http://127.0.0.1:9/v1&gt;" in html


# ----- the panel
def test_sources_panel_lists_cited_first_and_keeps_earlier_turns_hidden() -> None:
    p1, p2, p3 = passage("Eins.", n=1), passage("Zwei.", n=2, start=300), passage("Drei.", n=3, start=600)
    first = answer("Zwei [2].", (p1, p2, p3), (cite(p2, 2, 0, 4),), question="Erste?")
    second = answer("Drei [3].", (p1, p2, p3), (cite(p3, 3, 0, 4),), question="Zweite?")
    html = render.sources_html([first, None, second])
    assert html.index('id="src-1-2"') < html.index('id="src-1-1"')  # cited before the others
    assert '<section class="turn" id="turn-1" data-turn="1" hidden>' in html
    assert '<section class="turn" id="turn-3" data-turn="3">' in html  # the latest answered turn is shown
    assert "turn-2" not in html  # a turn that failed has no sources
    assert "Other retrieved passages" in html


def test_sources_panel_shows_the_rewritten_question_escaped() -> None:
    a = Answer(
        question="Und <dann>?",
        answer="x",
        abstained=True,
        passages=(passage("Eins."),),
        standalone_question="Wer kam <zuerst>? Und <dann>?",
    )
    html = render.sources_html([a])
    assert "Searched as: Wer kam &lt;zuerst&gt;? Und &lt;dann&gt;?" in html
    assert "No passage supports an answer." in html


def test_empty_panel_and_article_table() -> None:
    assert "Ask a question" in render.sources_html([])
    assert "No articles are indexed" in render.articles_html([])

    class Info:
        source, title, chunks, chars = "<x>.txt", XSS[1], 3, 12345

    html = render.articles_html([Info()])
    no_live_markup(html)
    assert "12,345" in html and "1 article indexed" in html


def test_status_lines_are_escaped() -> None:
    html = render.status_html([("ok", "a.txt: indexed"), ("error", XSS[0])])
    no_live_markup(html)
    assert 'class="status-ok"' in html and 'class="status-error"' in html


# ----- who published a source, and when (issue 14)
@pytest.mark.parametrize(
    ("meta", "outlet", "when"),
    [
        (ArticleMeta(outlet="Radio Nordost", updated="2023-09-12T16:40"), "Radio Nordost", "updated 2023-09-12"),
        (
            ArticleMeta(
                outlet="Elbtal Nachrichten", published="2024-01-05T08:00+01:00", updated="2024-01-05T18:30+01:00"
            ),
            "Elbtal Nachrichten",
            "2024-01-05 (updated 2024-01-05)",
        ),
        (ArticleMeta(published="2021-08-31"), "unknown outlet", "2021-08-31"),
        (ArticleMeta(), "unknown outlet", "undated"),
    ],
)
def test_every_source_shows_outlet_and_date(meta: ArticleMeta, outlet: str, when: str) -> None:
    p = replace(passage("Die Brücke ist gesperrt."), meta=meta)
    html = render.passage_html(p, 1, 1, [], show_scores=False)
    no_live_markup(html)
    assert re.search(rf'<span class="src-outlet[^"]*">{re.escape(outlet)}</span>', html)
    assert re.search(rf'<span class="src-date[^"]*">{re.escape(when)}</span>', html)


@pytest.mark.parametrize("payload", XSS)
def test_outlet_is_escaped(payload: str) -> None:
    p = replace(passage("Text."), meta=ArticleMeta(outlet=payload, published="2024-01-01"))
    no_live_markup(render.passage_html(p, 1, 1, [], show_scores=True))
