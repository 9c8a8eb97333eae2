"""Near-duplicate detection without a store: shingles, the LSH keys that are stored, grouping
order, and the measurement that chose MinHash over SimHash (``tests/dedup_pairs.py``)."""

from __future__ import annotations

import pytest

from index.dedup import (
    BAND_KEYS,
    JACCARD_THRESHOLD,
    Stored,
    assign,
    band_keys,
    hamming,
    jaccard,
    shingles,
    simhash,
    story_id,
    words,
)
from tests.dedup_pairs import copies, fixture_texts, measure

LEAD = "Die Havelbrücke in Rathenow ist seit Dienstagmorgen für den gesamten Verkehr gesperrt."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Die Reparatur soll rund 4,5 Millionen Euro kosten.",
            ["die", "reparatur", "soll", "rund", "4", "5", "millionen", "euro", "kosten"],
        ),
        ("**18 Millionen Euro** – B 188!", ["18", "millionen", "euro", "b", "188"]),
        ("", []),
    ],
)
def test_words_keep_numbers_and_drop_markup(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_shingles_and_jaccard() -> None:
    assert shingles("a b c d") == {"a b c", "b c d"}
    assert shingles("zwei Wörter") == {"zwei wörter"} and shingles("  ") == frozenset()
    a, b = shingles(LEAD), shingles(LEAD.replace("gesamten ", ""))
    assert jaccard(a, a) == 1.0 and jaccard(a, frozenset()) == 0.0
    assert jaccard(a, b) == pytest.approx(7 / 12)
    assert hamming(simhash(a), simhash(a)) == 0 and hamming(0b1011, 0b0001) == 2


def test_band_keys_are_stable() -> None:
    """They are stored in Chroma: a library default that changed them would split every group in a store."""
    keys = band_keys(shingles(LEAD))
    assert list(keys) == list(BAND_KEYS)
    assert all(0 <= v < 2**52 for v in keys.values())
    assert keys == band_keys(shingles(LEAD.upper()))
    assert keys["mh0"] == 3353571988559179 and keys["mh15"] == band_keys(shingles(LEAD))["mh15"]
    assert band_keys(frozenset()) == {}


def test_copies_group_in_one_run_in_order() -> None:
    texts = fixture_texts()
    original = texts["havelland-kurier-havelbruecke.html"]
    made = copies(original)
    articles = [
        ("a.html", "", [("c-a", original)]),
        ("b.txt", "", [("c-b", made["shortened"])]),
        ("c.txt", "", [("c-c", texts["radio-nordost-havelbruecke.txt"])]),
    ]
    out = assign(articles, lambda wanted: [], lambda urls: {})
    assert out["c-a"].group == out["c-b"].group == "c-a"  # the first copy starts the group
    assert out["c-b"].story == out["c-a"].story == story_id("a.html")
    assert out["c-c"].group == "c-c" and out["c-c"].story == story_id("c.txt")  # a rewrite is not a copy


def test_a_stored_copy_and_a_url_decide_group_and_story() -> None:
    text = fixture_texts()["lausitzer-echo-hallenbad.txt"]
    stored = Stored("old", "old.txt", text, "g-old", "s-old", band_keys(shingles(text)))
    asked: list[dict] = []

    def lookup(wanted: dict) -> list[Stored]:
        asked.append(wanted)
        return [stored]

    out = assign([("new.txt", "", [("n", copies(text)["reprint"])])], lookup, lambda urls: {})
    assert out["n"].group == "g-old" and out["n"].story == "s-old"
    assert len(asked) == 1 and set(asked[0]) == set(BAND_KEYS)
    # Its own older text is never its copy; a stored article with its URL gives the story.
    out = assign(
        [("old.txt", "https://x.example/a", [("n2", text)])],
        lookup,
        lambda urls: {"https://x.example/a": [("other.txt", "s-url")]},
    )
    assert out["n2"].group == "n2" and out["n2"].story == "s-url"


def test_minhash_is_measured_better_than_simhash() -> None:
    """The figures in docs/stories.md, as assertions: the deployed MinHash configuration makes no false
    pair on 48k others (XQuAD paragraphs among them), and finds more copies than SimHash at its best."""
    scores, facts = measure()
    deployed, estimate, sim = scores
    assert deployed.fp == 0 and deployed.recall >= 0.97
    assert deployed.f1 > sim.f1 and estimate.f1 > sim.f1
    assert facts["max_same_topic_jaccard"] < JACCARD_THRESHOLD / 4  # XQuAD: one topic is far from a copy
    assert facts["max_negative_jaccard"] < JACCARD_THRESHOLD
    assert deployed.rewrites == 0  # the outlets' own reports of one event are not copies (the limit)
