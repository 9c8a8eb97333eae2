"""Whether to answer: a calibrated decision over measured signals, not the model's obedience.

The signals of one question (:class:`Signals`) come from sentence retrieval over the
retrieved passages and, when there is a local LLM, from the model's own probability of
"no sentence answers" (one prompt evaluation, :mod:`rag.answer.reader`). A logistic model
turns them into P(answerable); the question is answered when P reaches the threshold.

Weights and thresholds are data (``calibration.json`` beside this module), fitted by
``scripts/calibrate.py`` on the *calibration* half of the public XQuAD withheld protocol
(``eval.datasets.load_xquad_withheld``) and reported on its test half. Nothing is fitted
on the gold set or the sample articles. One model per (reader kind, question language):
cross-lingual similarities live on another scale than German-German ones.

The features deliberately leave word overlap between question and sentence out of the
decision: news readers paraphrase, and a gate that needs shared words abstains on them
(measured on unseen news: 26 of 46 answerable questions). Word overlap still helps rank
sentences (:mod:`rag.answer.evidence`); it does not decide.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag.answer.evidence import RankWeights

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
FEATURES = (
    "dense_top",
    "dense_margin",
    "passage_dense",
    "dense_lift",
    "passage_lift",
    "type_match",
    "llm_none",
    "llm_pick",
    "llm_verify",
)
UNCALIBRATED_MIN_OVERLAP = 0.35  # the extractive gate of earlier versions, for embedders without a calibration


@dataclass(frozen=True)
class Signals:
    """What the decision sees for one question."""

    dense_top: float  # best cosine similarity question vs a sentence of the passages
    dense_margin: float  # best minus the median of it and the 4 next sentences that are not its paraphrases
    passage_dense: float  # cosine of the best retrieved passage
    llm_none: float | None = None  # the reader's P(no sentence answers), when an LLM read them
    llm_verify: float | None = None  # the reader's P(yes) to "does the chosen sentence answer it?"
    llm_pick: float | None = None  # the reader's probability of the sentence it picked
    type_match: float = 0.5  # the question asks for a number or a date: 1 if the chosen sentence has one, else 0
    lexical_top: float = 0.0  # best idf-weighted word overlap: only the uncalibrated fallback uses it
    # Relative to this question's own level: a paraphrased question scores lower against every
    # sentence, its answer included, so absolute cosines move with the phrasing and these do not.
    dense_lift: float = 0.0  # best sentence cosine minus the mean over all sentences of the passages
    passage_lift: float = 0.0  # best passage cosine minus the median of the retrieved passages'

    def vector(self, names: tuple[str, ...]) -> list[float]:
        values = {
            "dense_top": self.dense_top,
            "dense_margin": self.dense_margin,
            "passage_dense": self.passage_dense,
            "lexical_top": self.lexical_top,
            "llm_none": self.llm_none if self.llm_none is not None else 0.0,
            "llm_verify": self.llm_verify if self.llm_verify is not None else 0.5,
            "llm_pick": self.llm_pick if self.llm_pick is not None else 0.0,
            "type_match": self.type_match,
            "dense_lift": self.dense_lift,
            "passage_lift": self.passage_lift,
        }
        return [values[n] for n in names]

    def to_json(self) -> dict[str, float | None]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "dense_top": round(self.dense_top, 4),
            "dense_margin": round(self.dense_margin, 4),
            "passage_dense": round(self.passage_dense, 4),
            "lexical_top": round(self.lexical_top, 4),
            "llm_none": r(self.llm_none),
            "llm_verify": r(self.llm_verify),
            "llm_pick": r(self.llm_pick),
            "type_match": self.type_match,
            "dense_lift": round(self.dense_lift, 4),
            "passage_lift": round(self.passage_lift, 4),
        }


@dataclass(frozen=True)
class Model:
    """A logistic model over named, standardized features, and its operating point."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float

    def probability(self, signals: Signals) -> float:
        z = self.bias
        for x, m, s, w in zip(signals.vector(self.features), self.mean, self.scale, self.weights, strict=True):
            z += w * (x - m) / (s or 1.0)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    @classmethod
    def from_json(cls, data: dict) -> Model:
        return cls(
            tuple(data["features"]),
            tuple(data["mean"]),
            tuple(data["scale"]),
            tuple(data["weights"]),
            float(data["bias"]),
            float(data["threshold"]),
        )


@dataclass(frozen=True)
class Decision:
    answer: bool
    probability: float  # P(answerable)
    threshold: float


class Answerability:
    """The calibrated models, by embedder, reader kind ("extractive" or "llm") and language.

    Keys are ``"<embedder>/<kind>-<language>"``: similarities of one embedder mean nothing on
    another's scale. An embedder without a calibration (a sentence-transformers model of the
    user's, the tests' fake) falls back to the word-overlap gate of earlier versions: answer
    when the best sentence holds at least ``UNCALIBRATED_MIN_OVERLAP`` of the question's
    idf-weighted words, or, with an LLM reader, unless it puts most weight on [0].
    """

    def __init__(self, models: dict[str, Model], rank: dict[str, RankWeights] | None = None) -> None:
        self._models = models
        self._rank = rank or {}

    def decide(self, signals: Signals, kind: str, language: str, embedder: str) -> Decision:
        model = self._model(kind, language, embedder)
        if model is None:
            if signals.llm_none is not None:
                return Decision(signals.llm_none < 0.5, 1.0 - signals.llm_none, 0.5)
            return Decision(
                signals.lexical_top >= UNCALIBRATED_MIN_OVERLAP, signals.lexical_top, UNCALIBRATED_MIN_OVERLAP
            )
        p = model.probability(signals)
        return Decision(p >= model.threshold, p, model.threshold)

    def _model(self, kind: str, language: str, embedder: str) -> Model | None:
        """The reader's own model; else the extractive one of the language (an LLM reader
        without its own calibration then decides on the retrieval signals alone)."""
        for key in (f"{embedder}/{kind}-{language}", f"{embedder}/extractive-{language}", f"{embedder}/extractive-de"):
            if key in self._models:
                return self._models[key]
        return None

    def uses(self, feature: str, kind: str, language: str, embedder: str) -> bool:
        """Whether the decision reads ``feature`` (without a model: yes, so that calibration
        runs record every signal)."""
        model = self._model(kind, language, embedder)
        return model is None or feature in model.features

    def rank_weights(self, embedder: str) -> RankWeights:
        return self._rank.get(embedder, RankWeights())

    def kinds(self) -> list[str]:
        return sorted(self._models)

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Answerability:
        return _load(str(path))


@lru_cache(maxsize=4)
def _load(path: str) -> Answerability:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rank = {k: RankWeights(**v) for k, v in data.get("rank", {}).items()}
    return Answerability({k: Model.from_json(v) for k, v in data["models"].items()}, rank)
