"""Table-driven tests of the evaluation metrics (pure functions, no models)."""

from __future__ import annotations

import math

import pytest

from eval.metrics import (
    average_metrics,
    contains_answer,
    evidence_hit,
    hit_at_k,
    latency_summary,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    percentile,
    rank_sources,
    ranking_metrics,
    recall_at_k,
    token_f1,
)

RANKED = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ([], []),
        (["a", "a", "b"], ["a", "b"]),
        (["b", "a", "b", "c", "a"], ["b", "a", "c"]),
    ],
)
def test_rank_sources_keeps_first_occurrence(sources, expected):
    assert rank_sources(sources) == expected


@pytest.mark.parametrize(
    ("relevant", "k", "hit", "recall"),
    [
        ({"a"}, 1, 1.0, 1.0),
        ({"b"}, 1, 0.0, 0.0),
        ({"b"}, 3, 1.0, 1.0),
        ({"a", "e"}, 3, 1.0, 0.5),
        ({"a", "e"}, 5, 1.0, 1.0),
        ({"k"}, 10, 0.0, 0.0),  # 11th is outside the cut
        ({"zz"}, 10, 0.0, 0.0),
        (set(), 5, 0.0, 0.0),  # nothing relevant: no credit
    ],
)
def test_hit_and_recall(relevant, k, hit, recall):
    assert hit_at_k(RANKED, relevant, k) == hit
    assert recall_at_k(RANKED, relevant, k) == recall


@pytest.mark.parametrize(
    ("relevant", "expected"),
    [
        ({"a"}, 1.0),
        ({"c"}, 1 / 3),
        ({"c", "b"}, 1 / 2),  # first relevant counts
        ({"j"}, 1 / 10),
        ({"k"}, 0.0),
        (set(), 0.0),
    ],
)
def test_mrr_at_10(relevant, expected):
    assert mrr_at_k(RANKED, relevant, 10) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ranked", "relevant", "expected"),
    [
        (["a", "b"], {"a"}, 1.0),
        (["b", "a"], {"a"}, 1 / math.log2(3)),
        (["b", "a", "c"], {"a", "c"}, (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))),
        (["a", "c"], {"a", "c"}, 1.0),
        (["x", "y"], {"a"}, 0.0),
        (["a"], set(), 0.0),
        (RANKED, set(RANKED), 1.0),  # more relevant than k: the ideal ranking is cut at k too
        (["a", "x"], {"a", "b"}, 1 / (1 + 1 / math.log2(3))),
    ],
)
def test_ndcg_at_10(ranked, relevant, expected):
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(expected)


def test_ranking_metrics_has_every_key():
    got = ranking_metrics(["b", "a"], {"a"})
    assert set(got) == {
        "hit@1",
        "hit@3",
        "hit@5",
        "hit@10",
        "recall@1",
        "recall@3",
        "recall@5",
        "recall@10",
        "mrr@10",
        "ndcg@10",
    }
    assert got["hit@1"] == 0.0 and got["hit@3"] == 1.0 and got["mrr@10"] == 0.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Die KN-23!", "kn 23"),
        ("  The   Iskander system. ", "iskander system"),
        ("„Ich bestätige das.“", "ich bestätige"),
        ("152 bis 122 mm", "152 bis 122 mm"),
        ("Ａｂｃ", "abc"),  # NFKC
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("passages", "evidence", "expected"),
    [
        (
            ["Vorher. Die USA würden nicht zögern, neue Sanktionen zu verhängen. Danach."],
            "Die USA würden nicht zögern, neue Sanktionen zu verhängen.",
            1.0,
        ),
        (
            ["x", 'Kremlsprecher Dmitri Peskow gegenüber Interfax: "Ich bestätige das."'],
            "Dmitri Peskow gegenüber Interfax: „Ich bestätige das.“",
            1.0,
        ),  # quotes differ
        (["Die USA würden nicht zögern"], "Die USA würden nicht zögern, neue Sanktionen zu verhängen.", 0.0),
        ([], "irgendwas", 0.0),
        (["irgendwas"], "", 0.0),
    ],
)
def test_evidence_hit(passages, evidence, expected):
    assert evidence_hit(passages, evidence) == expected


@pytest.mark.parametrize(
    ("answer", "golds", "contains", "f1"),
    [
        ("Es ist die KN-23 [1].", ["KN-23"], 1.0, 2 * (2 / 5) / (2 / 5 + 1)),  # "es ist kn 23 1" vs "kn 23"
        ("Iskander", ["Iskander-Raketensystem", "Iskander"], 1.0, 1.0),
        ("Das Iskander-System", ["Iskander-Raketensystem"], 0.0, 0.5),
        ("Im Jahr 2019.", ["2019"], 1.0, 2 * (1 / 3) / (1 / 3 + 1)),
        ("20190", ["2019"], 0.0, 0.0),  # containment is on word boundaries
        ("", ["2019"], 0.0, 0.0),
        ("The answer", [], 0.0, 0.0),
    ],
)
def test_answer_correctness(answer, golds, contains, f1):
    assert contains_answer(answer, golds) == contains
    assert token_f1(answer, golds) == pytest.approx(f1)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([3.0, 1.0, 2.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 95, 4.8),
        ([7.0], 95, 7.0),
        (list(range(101)), 95, 95.0),
        ([], 50, None),
    ],
)
def test_percentile(values, q, expected):
    got = percentile(values, q)
    assert got == (None if expected is None else pytest.approx(expected))


def test_percentile_rejects_out_of_range():
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_in_ms():
    assert latency_summary([0.010, 0.020, 0.030]) == {"p50_ms": 20.0, "p95_ms": 29.0, "n": 3}
    assert latency_summary([]) == {"p50_ms": None, "p95_ms": None, "n": 0}


def test_average_metrics_skips_missing_values():
    rows = [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": None}, {"a": 0.5}]
    assert average_metrics(rows) == {"a": pytest.approx(0.5), "b": 0.0}
