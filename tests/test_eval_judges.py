"""Support judges: the lexical judge (table-driven), the LLM judge through a fake model,
the OpenAI-compatible yes/no client through httpx's MockTransport, and agreement."""

from __future__ import annotations

import json

import httpx
import pytest

from eval.judges import (
    LexicalJudge,
    LLMJudge,
    OpenAIYesNo,
    agreement,
    calibrate,
    claim_names,
    claim_numbers,
    judge_messages,
    yes_share,
)

PASSAGE = (
    "Am Dienstagmorgen (12. September) rollte der gepanzerte, grüne Zug des nordkoreanischen Machthabers "
    "über die russische Grenze. Kremlsprecher Dmitri Peskow bestätigte die Ankunft von Kim Jong-un."
)


@pytest.mark.parametrize(
    ("claim", "low", "high"),
    [
        ("Kremlsprecher Dmitri Peskow bestätigte die Ankunft.", 1.0, 1.0),  # verbatim words
        ("Der gepanzerte Zug ist grün.", 0.99, 1.0),
        ("Der Zug überquerte am 12. September die Grenze.", 0.6, 1.0),
        ("Der Zug überquerte am 13. September die Grenze.", 0.0, 0.0),  # a number not in the passage
        ("Sergej Lawrow bestätigte die Ankunft.", 0.0, 0.49),  # a name not in the passage
        ("Die Wirtschaft Japans wächst kräftig.", 0.0, 0.2),
        ("The train is green.", 0.0, 0.49),  # no shared words: not supported
        ("", 0.0, 0.0),
    ],
)
def test_lexical_judge(claim, low, high):
    score = LexicalJudge().supports(claim, PASSAGE)
    assert low <= score <= high, score


def test_lexical_judge_empty_passage():
    assert LexicalJudge().supports("Der Zug ist grün.", "  ") == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Rund 700 Kilometer", {"700"}),
        ("1.000 oder 1,000 Soldaten", {"1000"}),
        ("4,2 Millionen Euro", {"4.2"}),
        ("am 12. September 2023.", {"12", "2023"}),
        ("keine Zahl", set()),
    ],
)
def test_claim_numbers(text, expected):
    assert claim_numbers(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Die KN-23 ähnelt dem Iskander-System.", ["KN-23", "Iskander-System"]),
        ("According to Jake Sullivan, it took a week.", ["Jake", "Sullivan"]),
        ("Er kam an.", []),
    ],
)
def test_claim_names(text, expected):
    assert claim_names(text) == expected


class FakeYesNo:
    """A scripted yes/no model: 'yes' when the claim's first word is in the passage."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, str]]] = []

    def yes_probability(self, messages):
        self.calls.append(messages)
        user = messages[-1]["content"]
        text, claim = user.split("Aussage / claim:")
        return 0.9 if claim.split()[0] in text else 0.1


def test_llm_judge_uses_the_model_and_caches():
    model = FakeYesNo()
    judge = LLMJudge(model)
    assert judge.supports("Peskow bestätigte es.", PASSAGE) == 0.9
    assert judge.supports("Lawrow bestätigte es.", PASSAGE) == 0.1
    assert judge.supports("Peskow bestätigte es.", PASSAGE) == 0.9
    assert len(model.calls) == 2  # the repeated pair came from the cache
    assert model.calls[0][0]["role"] == "system" and "Ja oder Nein" in model.calls[0][-1]["content"]
    assert judge.supports("", PASSAGE) == 0.0


def test_judge_messages_put_claim_and_passage_in_the_prompt():
    messages = judge_messages("Eine Aussage.", "Ein Text.")
    assert "Eine Aussage." in messages[-1]["content"] and "Ein Text." in messages[-1]["content"]


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        ([("Ja", -0.1), ("Nein", -2.5)], 0.9168),
        ([(" yes", -1.0), ("No", -1.0)], 0.5),
        ([("Nein", -0.01), ("Ja", -6.0)], 0.0025),
        ([("Vielleicht", -0.1)], 0.5),
        ([("Ja", -0.69315), ("Ne", -0.69315)], 0.5),  # Qwen's "Nein" starts with the token "Ne"
    ],
)
def test_yes_share(top, expected):
    assert yes_share(top) == pytest.approx(expected, abs=1e-3)


def _server(payload: dict, seen: list) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=payload)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_openai_yes_no_reads_logprobs():
    seen: list = []
    payload = {
        "choices": [
            {
                "message": {"content": "Ja"},
                "logprobs": {
                    "content": [
                        {
                            "token": "Ja",
                            "logprob": -0.2,
                            "top_logprobs": [{"token": "Ja", "logprob": -0.2}, {"token": "Nein", "logprob": -1.8}],
                        }
                    ]
                },
            }
        ]
    }
    model = OpenAIYesNo("http://judge.test/v1", "m", client=_server(payload, seen))
    p = model.yes_probability(judge_messages("a", "b"))
    assert p == pytest.approx(0.832, abs=1e-3)
    assert seen[0]["max_tokens"] == 1 and seen[0]["logprobs"] is True and seen[0]["model"] == "m"


@pytest.mark.parametrize(("text", "expected"), [("Nein.", 0.0), ("Yes", 1.0), ("Hmm", 0.5)])
def test_openai_yes_no_falls_back_to_the_word(text, expected):
    payload = {"choices": [{"message": {"content": text}}]}
    model = OpenAIYesNo("http://judge.test/v1", "m", client=_server(payload, []))
    assert model.yes_probability(judge_messages("a", "b")) == expected


def test_openai_yes_no_server_error_is_model_unavailable():
    from rag.errors import ModelUnavailable

    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500, text="boom")))
    with pytest.raises(ModelUnavailable):
        OpenAIYesNo("http://judge.test/v1", "m", client=client).yes_probability(judge_messages("a", "b"))


@pytest.mark.parametrize(
    ("pairs", "agree", "kappa"),
    [
        ([(0.9, 0.9), (0.1, 0.2), (0.8, 0.7), (0.2, 0.1)], 1.0, 1.0),
        ([(0.9, 0.1), (0.1, 0.9)], 0.0, -1.0),
        ([(0.9, 0.9), (0.9, 0.1), (0.1, 0.1), (0.1, 0.9)], 0.5, 0.0),
        ([(0.9, 0.9), (0.8, 0.8)], 1.0, None),  # both always yes: kappa undefined
    ],
)
def test_agreement(pairs, agree, kappa):
    got = agreement(pairs)
    assert got["agreement"] == agree and got["kappa"] == kappa and got["n"] == len(pairs)


def test_agreement_empty():
    assert agreement([])["agreement"] is None


def test_calibrate_finds_the_threshold_that_agrees_best():
    # the fast judge scores supported pairs 0.3-0.4 and unsupported ones 0.1-0.2
    pairs = [(0.35, 0.9), (0.4, 0.8), (0.3, 0.95), (0.1, 0.05), (0.2, 0.1), (0.15, 0.2)]
    got = calibrate(pairs)
    assert got["default"]["agreement"] == 0.5
    assert got["best"]["agreement"] == 1.0 and 0.2 < got["best"]["threshold"] <= 0.3


@pytest.mark.slow
def test_llm_judge_with_the_packaged_model_separates_support_from_contradiction():
    pytest.importorskip("llama_cpp")
    from eval.judges import make_judge
    from rag.errors import ModelUnavailable
    from rag.settings import Settings

    try:
        judge = make_judge("llm", Settings())
    except ModelUnavailable as exc:
        pytest.skip(str(exc))
    supported = judge.supports("Der Zug des Machthabers ist grün und gepanzert.", PASSAGE)
    unsupported = judge.supports("Kim flog mit einem Flugzeug nach Moskau.", PASSAGE)
    assert 0.0 <= unsupported < supported <= 1.0
    assert supported >= 0.5
