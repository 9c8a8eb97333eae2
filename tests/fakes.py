"""Fakes injected through the protocols (no mocks): a scripted generator."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rag.answer.generators import GenerationRequest


class ScriptedGenerator:
    """An 'LLM' that answers from a script: a fixed reply, or a function of the request.

    Records every request so tests can look at the prompt that was built.
    """

    is_llm = True

    def __init__(self, reply: str | Callable[[GenerationRequest], str], name: str = "scripted") -> None:
        self.reply = reply
        self.name = name
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        self.requests.append(request)
        text = self.reply(request) if callable(self.reply) else self.reply
        for i in range(0, len(text), 7):  # stream in small pieces like a real model
            yield text[i : i + 7]


class FixedAnswerability:
    """An answerability decision that always says the same (the seam for answer-path tests)."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer

    def decide(self, signals, kind: str, language: str, embedder: str):
        from rag.answer.decision import Decision

        return Decision(self.answer, 1.0 if self.answer else 0.0, 0.5)

    def rank_weights(self, embedder: str):
        from rag.answer.evidence import RankWeights

        return RankWeights()

    def uses(self, feature: str, kind: str, language: str, embedder: str) -> bool:
        return True


class ScriptedReader(ScriptedGenerator):
    """A reader with logits: ``choose`` returns scripted option probabilities from a function
    of the numbered sentences it is shown (like the local LLM's first-token distribution)."""

    def __init__(
        self, pick: Callable[[list[str]], list[float]], reply: str = "", name: str = "reader", verify: float = 0.9
    ) -> None:
        super().__init__(reply, name)
        self.pick = pick
        self.verify = verify  # P(yes) of the yes/no check after the pick
        self.shown: list[list[str]] = []
        self.checked: list[str] = []  # the check questions asked

    def choose(self, messages, prefix: str, options):
        from rag.answer.prompts import VERIFY_OPTIONS

        if tuple(options) in VERIFY_OPTIONS.values():
            self.checked.append(messages[-1]["content"])
            return [self.verify, 1.0 - self.verify]
        lines = [line.split("] ", 1)[1] for line in messages[-1]["content"].split("\n") if line.startswith("[")]
        self.shown.append(lines)
        return self.pick(lines)

    def continue_reply(self, messages, prefix: str, max_tokens: int, stop=("\n",)):
        self.requests.append(prefix)
        yield from self.generate_text(self.reply)

    @staticmethod
    def generate_text(text: str):
        for i in range(0, len(text), 7):
            yield text[i : i + 7]
