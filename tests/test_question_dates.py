"""Dates in questions (issue 14, part 2): a period the question names filters by publication
date, relative to today; when no article was published then, all are searched and the answer
says the period was not applied. Real store (fake embedder) over the news fixture corpus."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from rag import Pipeline, Settings
from rag.filters import question_period
from tests.news_corpus import NEWS_DIR
from tests.test_filters import options

FRIDAY = date(2026, 12, 4)


@pytest.mark.parametrize(
    ("question", "since", "until"),
    [
        ("Was berichtete die Tagesschau letzte Woche über Kim?", date(2026, 11, 23), date(2026, 11, 29)),
        ("Was geschah im Januar 2024 in Cottbus?", date(2024, 1, 1), date(2024, 1, 31)),
        ("Was ist seit 2022 passiert?", date(2022, 1, 1), FRIDAY),
        ("What happened in the last month?", date(2026, 11, 4), FRIDAY),
        ("What did they say last month?", date(2026, 11, 1), date(2026, 11, 30)),
        ("Was war im März?", date(2026, 3, 1), date(2026, 3, 31)),  # the latest March that has begun
        ("Was war im Dezember?", date(2026, 12, 1), date(2026, 12, 31)),
        ("Was gab es in den letzten drei Tagen?", date(2026, 12, 1), FRIDAY),
        ("Was passierte vor 2020?", None, date(2019, 12, 31)),
        ("Was war diese Woche?", date(2026, 11, 30), FRIDAY),
        ("Was wurde im Jahr 2023 beschlossen?", date(2023, 1, 1), date(2023, 12, 31)),
    ],
)
def test_question_period(question: str, since: date | None, until: date) -> None:
    found = question_period(question, FRIDAY)
    assert found is not None and found[:2] == (since, until)


@pytest.mark.parametrize(
    "question",
    [
        "Wie viele Raketen kann das U-Boot tragen?",
        "Wann treffen sich Kim und Putin?",
        "Was kostete es 2019?",
        "Wer hat 100 Euro gezahlt?",
    ],
)
def test_no_period_without_time_words(question: str) -> None:
    assert question_period(question, FRIDAY) is None


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    base = tmp_path_factory.mktemp("dates")
    with Pipeline(Settings(**options(base))) as pipeline:
        pipeline.index([NEWS_DIR])
        yield pipeline


def _days(pipeline: Pipeline, answer) -> set[str]:
    return {(p.meta.published or p.meta.updated)[:7] for p in answer.passages}


def test_period_in_question_filters_by_publication_date(news: Pipeline) -> None:
    answer = news.ask("Was wurde im Januar 2024 über das Hallenbad in Cottbus beschlossen?")
    assert answer.period == {"words": "im Januar 2024", "since": "2024-01-01", "until": "2024-01-31", "applied": True}
    assert answer.passages and _days(news, answer) == {"2024-01"}
    plain = news.ask("Was wurde über das Hallenbad in Cottbus beschlossen?")
    assert plain.period is None


def test_period_nothing_was_published_in_falls_back_to_all(news: Pipeline) -> None:
    answer = news.ask("Was wurde im Januar 2021 über das Hallenbad in Cottbus beschlossen?")
    assert answer.period is not None and answer.period["applied"] is False
    assert answer.passages  # searched all articles instead of answering from nothing


def test_explicit_dates_win_and_the_setting_turns_it_off(news: Pipeline, tmp_path: Path) -> None:
    answer = news.ask("Was wurde im Januar 2024 über das Hallenbad beschlossen?", since="2023-09", until="2023-09")
    assert answer.period is None and _days(news, answer) <= {"2023-09"}
    off = Pipeline(news.settings.with_(question_dates=False))
    try:
        assert off.ask("Was wurde im Januar 2024 über das Hallenbad beschlossen?").period is None
    finally:
        off.close()


def test_period_reaches_json(news: Pipeline) -> None:
    data = news.ask("Was stand letzte Woche über die Havelbrücke?").to_json()
    assert data["period"]["words"] == "letzte Woche" and data["period"]["applied"] is False  # 2023 articles


def test_cli_prints_the_period(cli, tmp_path: Path) -> None:
    from tests.test_filters import STORE_OPTIONS

    toml = tmp_path / "rag.toml"
    lines = [f'store = "{tmp_path / "store"}"', f'cache_dir = "{tmp_path / "cache"}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in STORE_OPTIONS.items()]
    toml.write_text("\n".join(lines) + "\n")
    assert cli("--settings", toml, "index", NEWS_DIR).code == 0
    result = cli("--settings", toml, "ask", "Was wurde im Januar 2024 über das Hallenbad in Cottbus beschlossen?")
    assert result.code == 0, result.err
    assert '("im Januar 2024": published 2024-01-01 – 2024-01-31)' in result.out


def test_answer_repeating_a_relative_day_adds_the_date(tmp_path: Path) -> None:
    """The answer says "gestern (12. September 2023)"; the quote stays the article's words."""
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "stadtrat.txt").write_text(
        "Stadtrat beschließt Brücke\n\nStand: 13.09.2023 10:00 Uhr\n\n"
        "Der Stadtrat von Rathenow hat gestern den Bau einer neuen Fußgängerbrücke beschlossen. "
        "Die Brücke soll im Jahr 2025 fertig sein.\n",
        encoding="utf-8",
    )
    with Pipeline(Settings(**options(tmp_path))) as pipeline:
        pipeline.index([folder])
        answer = pipeline.ask("Wann hat der Stadtrat von Rathenow den Bau der Fußgängerbrücke beschlossen?")
        assert not answer.abstained, answer
        assert "gestern (12. September 2023) den Bau" in answer.answer
        quote = answer.citations[0].quote
        assert "gestern den Bau" in quote and "(" not in quote
        assert (
            pipeline.article(answer.citations[0].source).text[answer.citations[0].start : answer.citations[0].end]
            == quote
        )
