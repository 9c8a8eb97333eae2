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
