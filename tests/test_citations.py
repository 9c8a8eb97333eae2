"""Citation parsing and rendering: pure functions, table-driven."""

import pytest

from rag.answer.citations import Claim, parse_answer, render_claims, valid_cites
from rag.answer.evidence import numbers
from rag.answer.prompts import CITATION_RE, NO_ANSWER, NO_ANSWER_PATTERNS, render


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Das U-Boot trägt zehn Raketen [1].", [Claim("Das U-Boot trägt zehn Raketen.", (1,))]),
        ("Das U-Boot trägt zehn Raketen. [1]", [Claim("Das U-Boot trägt zehn Raketen.", (1,))]),
        ("Erster Satz [1]. Zweiter Satz [2][3].", [Claim("Erster Satz.", (1,)), Claim("Zweiter Satz.", (2, 3))]),
        ("Beides stimmt [1, 2].", [Claim("Beides stimmt.", (1, 2))]),
        ("Doppelt [2][2].", [Claim("Doppelt.", (2,))]),
        ("Ohne Beleg.", [Claim("Ohne Beleg.", ())]),
        (
            "Am 12. September kam er an [1]. Danach sprach er [2].",
            [Claim("Am 12. September kam er an.", (1,)), Claim("Danach sprach er.", (2,))],
        ),
        ("", []),
        ("[1]", []),
    ],
)
def test_parse_answer(answer, expected):
    assert parse_answer(answer) == expected


@pytest.mark.parametrize(
    ("claims", "text"),
    [
        ([Claim("Satz eins.", (1,))], "Satz eins [1]."),
        ([Claim("Satz eins.", (1, 2)), Claim("Satz zwei?", (3,))], "Satz eins [1][2]. Satz zwei [3]?"),
        ([Claim("Ohne Punkt", (1,))], "Ohne Punkt [1]."),
        ([Claim("Kein Beleg.", ())], "Kein Beleg."),
    ],
)
def test_render_claims(claims, text):
    assert render_claims(claims) == text
    assert parse_answer(text) == [Claim(c.text if c.text[-1] in ".?!" else c.text + ".", c.cites) for c in claims]


@pytest.mark.parametrize(
    ("cites", "n", "valid"),
    [((1, 2), 2, (1, 2)), ((0, 1, 7), 5, (1,)), ((), 3, ()), ((4,), 3, ())],
)
def test_valid_cites_drops_markers_to_missing_passages(cites, n, valid):
    assert valid_cites(Claim("x", cites), n) == valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bis zu zehn Raketen", {"10"}),
        ("up to ten missiles", {"10"}),
        ("10 Raketen", {"10"}),
        ("1.000 Soldaten und 4,2 Millionen", {"1000", "4.2"}),
        ("am 13. September 2023", {"13", "2023"}),
        ("ein Zug", set()),
    ],
)
def test_numbers_normalized(text, expected):
    assert numbers(text) == expected


def test_no_answer_sentences_are_recognized_by_the_parser_pattern():
    for sentence in NO_ANSWER.values():
        assert NO_ANSWER_PATTERNS.search(sentence)
    assert not NO_ANSWER_PATTERNS.search("Das U-Boot kann zehn Raketen tragen.")


def test_citation_marker_format_is_shared():
    assert CITATION_RE.findall("a [1] b [2, 3]") == ["1", "2, 3"]


def test_render_is_strict():
    assert render("Frage: {question}", question="Wer?") == "Frage: Wer?"
    with pytest.raises(KeyError):
        render("Frage: {question} {passages}", question="Wer?")
