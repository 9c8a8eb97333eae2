"""Generators behind one small protocol, chosen by name in settings.

- ``local``: a packaged Qwen2.5 GGUF through llama-cpp-python, streaming, one model per
  process, calls queued behind a lock (two CPU cores run one generation well, not two).
  llama.cpp reuses the KV cache of the longest common prompt prefix, so the fixed
  system prompt and example are evaluated once.
- ``openai``: any OpenAI-compatible chat-completions server (llama.cpp server, vLLM,
  Ollama, OpenAI), streamed over server-sent events with httpx.
- ``extractive``: no LLM. The answer is the best-supported sentence(s) of the passages,
  quoted with their citation: instant and always grounded.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol, cast

from rag.errors import ModelUnavailable
from rag.settings import Settings

if TYPE_CHECKING:
    import numpy as np
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from llama_cpp.llama_types import (
        ChatCompletionRequestMessage,
        CreateChatCompletionStreamResponse,
        CreateCompletionStreamResponse,
    )

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class ExtractiveChoice:
    """For the extractive generator: ranked sentences as (passage number 1.., text)."""

    sentences: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class GenerationRequest:
    messages: Messages
    max_tokens: int
    language: str
    extractive: ExtractiveChoice = field(default_factory=lambda: ExtractiveChoice(()))


class Generator(Protocol):
    name: str
    is_llm: bool

    def generate(self, request: GenerationRequest) -> Iterator[str]: ...


class ExtractiveGenerator:
    name = "extractive"
    is_llm = False

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        for n, text in request.extractive.sentences[:2]:
            body = text.rstrip()
            stop = body[-1] if body and body[-1] in ".!?" else "."
            body = body[:-1] if body and body[-1] in ".!?" else body
            yield f"{body} [{n}]{stop} "


class LocalLlamaGenerator:
    is_llm = True

    def __init__(self, settings: Settings) -> None:
        from rag.answer.models import model_file

        self.name = f"local:{settings.local_model}"
        path = model_file(settings.local_model, settings.cache_dir)
        threads = settings.llm_threads or os.cpu_count() or 1
        # The model and its lock are cached together: every generator instance over the
        # same model file shares both, so two requests never drive one model at once.
        self._llm, self._lock = _load_llama(str(path), settings.llm_context, threads)
        self._format: Jinja2ChatFormatter | None = None  # the GGUF's chat template, for the reading (choose) calls

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        with self._lock:  # one generation at a time; others wait their turn
            stream = self._llm.create_chat_completion(
                messages=llama_messages(request.messages),
                max_tokens=request.max_tokens,
                temperature=0.0,
                top_p=1.0,
                repeat_penalty=1.1,
                stream=True,
            )
            for chunk in cast("Iterator[CreateChatCompletionStreamResponse]", stream):  # stream=True: chunks
                piece = chunk["choices"][0].get("delta", {}).get("content")
                if isinstance(piece, str) and piece:  # None in the role and the final chunk
                    yield piece

    def warm(self, prefixes: list[Messages]) -> None:
        """Evaluate prompts whose fixed beginnings later prompts share (one token each);
        their states stay in the prompt cache."""
        for messages in prefixes:
            with self._lock:
                self._llm.create_chat_completion(messages=llama_messages(messages), max_tokens=1, temperature=0.0)

    # ----- reading instead of writing: one prompt evaluation gives a choice and its probability
    def choose(self, messages: Messages, prefix: str, options: Sequence[str]) -> list[float]:
        """Probability of each option as the model's next token after its reply begins with
        ``prefix`` (softmax over the options' first tokens; one prompt evaluation, no sampling).
        The KV cache keeps the prompt, so :meth:`continue_reply` after it reads only its own text."""
        import numpy as np

        tokens = self._reply_tokens(messages, prefix)
        ids = [self._llm.tokenize(o.encode(), add_bos=False, special=False)[0] for o in options]
        with self._lock:
            logits = self._eval_logits(tokens)
        chosen = np.array([logits[i] for i in ids], dtype=np.float64)
        weights = np.exp(chosen - chosen.max())
        return [float(w) for w in weights / weights.sum()]

    def continue_reply(
        self, messages: Messages, prefix: str, max_tokens: int, stop: Sequence[str] = ("\n",)
    ) -> Iterator[str]:
        """Greedy continuation of a reply that begins with ``prefix`` (streamed)."""
        tokens = self._reply_tokens(messages, prefix)
        with self._lock:
            stream = self._llm.create_completion(
                prompt=tokens,
                max_tokens=max_tokens,
                temperature=0.0,
                top_p=1.0,
                repeat_penalty=1.0,
                stop=list(stop),
                stream=True,
            )
            for chunk in cast("Iterator[CreateCompletionStreamResponse]", stream):  # stream=True: chunks
                piece = chunk["choices"][0].get("text")
                if piece:
                    yield piece

    def _reply_tokens(self, messages: Messages, prefix: str) -> list[int]:
        if self._format is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = self._llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ModelUnavailable("The GGUF model has no chat template; use --generator extractive.")
            eos = self._llm.detokenize([self._llm.token_eos()], special=True).decode("utf-8", "ignore")
            self._format = Jinja2ChatFormatter(template, eos_token=eos, bos_token="")
        prompt = self._format(messages=llama_messages(messages)).prompt + prefix
        tokens = self._llm.tokenize(prompt.encode(), add_bos=False, special=True)
        limit = self._llm.n_ctx() - 64
        return tokens[-limit:] if len(tokens) > limit else tokens

    def _eval_logits(self, tokens: list[int]) -> np.ndarray:
        """The vocabulary's logits for the token after ``tokens``."""
        import llama_cpp
        import numpy as np

        llm = self._llm
        keep = min(llm.longest_token_prefix(list(llm.eval_tokens), tokens), len(tokens) - 1)
        llm.n_tokens = keep  # eval() drops the KV cache after this point
        llm.eval(tokens[keep:])
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()


def llama_messages(messages: Messages) -> list[ChatCompletionRequestMessage]:
    """The messages as llama_cpp types them: the same dicts (a role, system, user or assistant, and its text)."""
    return cast("list[ChatCompletionRequestMessage]", messages)


# Prompt batch: as fast as 512 here (~20 tokens/s either way on 2 cores), and each cached
# state carries batch x vocabulary logits (78 MB at 128 instead of 311 MB at 512).
PROMPT_BATCH = 128
PROMPT_CACHE_BYTES = 1 << 30


@lru_cache(maxsize=2)
def _load_llama(path: str, n_ctx: int, threads: int) -> tuple[Llama, threading.Lock]:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelUnavailable(
            "llama-cpp-python is not installed: run `make setup` "
            "(or pip install 'llama-cpp-python==0.3.36'), or use --generator extractive."
        ) from exc
    try:
        llm = Llama(
            model_path=path,
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
            logits_all=False,
            seed=0,
            n_batch=PROMPT_BATCH,
            n_ubatch=PROMPT_BATCH,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelUnavailable(
            f"The model file {path} could not be loaded ({exc}). Delete it so it is joined "
            "again from the installed parts, or reinstall them with `make setup`."
        ) from exc
    # Prompt prefix caching: llama.cpp reuses the KV cache of the prompt it evaluated last;
    # this keeps the states of recent prompts too, so the fixed system prompt and example
    # of each prompt kind (German/English answer, rewrite, judge) are read once, not again
    # after every switch between kinds.
    from llama_cpp import LlamaRAMCache

    llm.set_cache(LlamaRAMCache(capacity_bytes=PROMPT_CACHE_BYTES))
    # Free the model while the interpreter is whole: left to garbage collection during
    # finalization, llama.cpp's context can be freed after the backend it belongs to.
    atexit.register(llm.close)
    return llm, threading.Lock()


class OpenAICompatibleGenerator:
    is_llm = True

    def __init__(self, settings: Settings) -> None:
        self.name = f"openai:{settings.openai_model}"
        self._url = settings.openai_base_url.rstrip("/") + "/chat/completions"
        self._model = settings.openai_model
        self._key = settings.openai_api_key
        self._timeout = settings.request_timeout

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        import httpx

        body = {
            "model": self._model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": 0.0,
            "stream": True,
        }
        headers = {"Authorization": f"Bearer {self._key}"}
        try:
            with httpx.stream(
                "POST", self._url, json=body, headers=headers, timeout=httpx.Timeout(self._timeout, connect=5.0)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ModelUnavailable(
                        f"The LLM server at {self._url} answered {response.status_code}: {response.text[:200]}"
                    )
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    choices = json.loads(data).get("choices") or [{}]
                    piece = (choices[0].get("delta") or {}).get("content")
                    if piece:
                        yield piece
        except httpx.HTTPError as exc:
            raise ModelUnavailable(
                f"Cannot reach the LLM server at {self._url} ({type(exc).__name__}). "
                "Start it, fix openai_base_url, or use --generator extractive."
            ) from exc


def make_generator(settings: Settings) -> Generator:
    if settings.generator == "extractive":
        return ExtractiveGenerator()
    if settings.generator == "openai":
        return OpenAICompatibleGenerator(settings)
    return LocalLlamaGenerator(settings)
