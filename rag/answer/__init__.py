"""Grounded answers: generation behind a protocol, citations checked against the passages."""

from rag.answer.answerer import Answerer
from rag.answer.generators import (
    ExtractiveGenerator,
    GenerationRequest,
    Generator,
    LocalLlamaGenerator,
    OpenAICompatibleGenerator,
    make_generator,
)
from rag.answer.prompts import NO_ANSWER

__all__ = [
    "Answerer",
    "ExtractiveGenerator",
    "GenerationRequest",
    "Generator",
    "LocalLlamaGenerator",
    "NO_ANSWER",
    "OpenAICompatibleGenerator",
    "make_generator",
]
