"""The ``openai`` embedder: vectors from an OpenAI-compatible ``/embeddings`` endpoint.

Any server that speaks ``POST {base_url}/embeddings`` with ``{"model", "input": [...]}`` and
answers ``{"data": [{"index", "embedding": [floats]}]}``: TEI, vLLM, Ollama, Infinity,
llama.cpp's servers, OpenAI itself. Texts go in requests of at most ``batch_size``; a request
that fails on the way (connection refused or reset, connect timeout) or with 429/5xx is
retried with exponential backoff (``Retry-After`` is honoured, within bounds); everything else
fails at once. Every failure is a :class:`~rag.errors.ModelUnavailable` whose message names
the server and says what to do.

A request that times out while waiting for the answer is *not* retried: the server got it and
is most likely still computing it. Measured with llama-cpp-python's server (one request at a
time) on a loaded 2-core machine: a 32-chunk batch ran past 60 s, and four retries queued four
more copies of the same work, so the next request waited 257 s for them. The fix is a smaller
``batch_size`` or a longer timeout, and the message says so.

What it leaves out:
- Token counting is local and approximate (one token per :data:`CHARS_PER_TOKEN` characters,
  plus two special tokens): the server's tokenizer is unknown and a request per count would
  make chunking as slow as embedding. On the sample articles the real counts are 0.24-0.27
  tokens per character (multilingual-e5), 0.28-0.32 (Qwen2.5), 0.34-0.37 (English MiniLM),
  so chunks come out at or a little under ``chunk_size`` tokens for multilingual models.
- Requests go one after another (indexing hands over a group at a time); a faster server
  makes indexing faster, several replicas behind one URL do not yet.
- The vector size is not discovered: it is a setting (``embedder_dim``) and part of the
  index fingerprint, so opening a store never needs the server, and a server that starts
  returning another size is an error instead of a silently mixed index.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import ModelUnavailable

if TYPE_CHECKING:
    import httpx

    from index.embed import Kind
    from rag.settings import Settings

CHARS_PER_TOKEN = 3  # conservative for multilingual tokenizers on German (see the module docstring)
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 10.0
MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class ServerConfig:
    """Where the embeddings server is and how to talk to it."""

    base_url: str  # up to and including the version part, e.g. http://127.0.0.1:8080/v1
    model: str
    dim: int
    api_key: str = ""
    batch_size: int = 32
    timeout: float = 60.0  # seconds per request
    retries: int = 4  # further attempts after the first
    backoff: float = 0.5  # seconds before the first retry; doubles each time (capped)
    query_prefix: str = ""  # e.g. "query: " for e5 models, "search_query: " for nomic
    passage_prefix: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerConfig:
        return cls(
            base_url=settings.embedder_url or settings.openai_base_url,
            model=settings.embedder_model,
            dim=settings.embedder_dim,
            api_key=settings.embedder_api_key or settings.openai_api_key,
            batch_size=settings.embed_batch_size,
            timeout=settings.embedder_timeout,
            retries=settings.embedder_retries,
            query_prefix=settings.embedder_query_prefix,
            passage_prefix=settings.embedder_passage_prefix,
        )

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/embeddings"


class OpenAIEmbedder:
    """Embeds through an OpenAI-compatible server; returns L2-normalized float32 rows."""

    def __init__(self, config: ServerConfig) -> None:
        import httpx

        if not config.model or config.dim < 1:
            raise ModelUnavailable(
                "The openai embedder needs embedder_model and embedder_dim (the vector size the "
                "server returns; `rag doctor` shows it)."
            )
        self.config = config
        self.name = f"openai/{config.model}"
        self.dim = config.dim
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        # Connecting gets at most 5 s of the budget: a dead host should fail (and be retried) early.
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 5.0))
        )
        self._lock = threading.Lock()
        self.requests = 0  # requests sent, retries included (for reports and tests)

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefix = self.config.query_prefix if kind == "query" else self.config.passage_prefix
        # An empty string is refused by some servers (OpenAI) and has no tokens for others.
        inputs = [prefix + t if (prefix + t).strip() else " " for t in texts]
        step = self.config.batch_size
        parts = [self._embed_batch(inputs[i : i + step]) for i in range(0, len(inputs), step)]
        out = np.vstack(parts)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN) + 2

    def close(self) -> None:
        self._client.close()

    def probe_dim(self) -> int:
        """The vector size the server returns for one short text (one request; the size is not checked)."""
        response = self._post({"model": self.config.model, "input": ["rag doctor"]})
        return int(self._vectors(response, 1, check_dim=False).shape[1])

    # ----- one request, with retries
    def _embed_batch(self, inputs: list[str]) -> np.ndarray:
        response = self._post({"model": self.config.model, "input": inputs})
        return self._vectors(response, len(inputs))

    def _post(self, payload: dict[str, Any]) -> httpx.Response:
        import httpx

        where = f"The embeddings server at {self.config.url}"
        attempts = self.config.retries + 1
        for attempt in range(1, attempts + 1):
            with self._lock:
                self.requests += 1
            try:
                response = self._client.post(self.config.url, json=payload)
            except httpx.ReadTimeout:
                n = len(payload["input"])
                raise ModelUnavailable(
                    f"{where} did not answer within {self.config.timeout:g} s for {n} "
                    f"text{'s' if n != 1 else ''} (not retried: it may still be working on "
                    "them). Raise embedder_timeout, or lower embed_batch_size for a slow "
                    "server."
                ) from None
            except httpx.TimeoutException:  # connecting or sending: the server has not got the request
                problem, wait = f"did not take the request within {self.config.timeout:g} s", None
            except httpx.TransportError as exc:
                problem, wait = f"cannot be reached ({_reason(exc)})", None
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRY_STATUS:
                    raise ModelUnavailable(
                        f"{where} refused the request: HTTP {response.status_code}"
                        f"{_detail(response)}. {_hint(response.status_code, self.config)}"
                    )
                problem = f"answered HTTP {response.status_code}{_detail(response)}"
                wait = _retry_after(response)
            if attempt == attempts:
                tries = f" ({attempts} attempts)" if attempts > 1 else ""
                raise ModelUnavailable(
                    f"{where} {problem}{tries}. Check that it is running and serves "
                    f"model {self.config.model!r}, or raise embedder_timeout / embedder_retries."
                )
            backoff = min(self.config.backoff * 2 ** (attempt - 1), MAX_BACKOFF_S)
            time.sleep(backoff if wait is None else min(max(wait, backoff), MAX_RETRY_AFTER_S))
        raise AssertionError("unreachable")  # pragma: no cover

    def _vectors(self, response: httpx.Response, n: int, check_dim: bool = True) -> np.ndarray:
        where = f"The embeddings server at {self.config.url}"
        try:
            data = response.json()["data"]
            rows = sorted(data, key=lambda item: item.get("index", 0))
            vectors = [row["embedding"] for row in rows]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ModelUnavailable(
                f"{where} did not answer like an OpenAI-compatible /embeddings endpoint "
                f"({response.text[:120]!r}). Check embedder_url (it ends before /embeddings, "
                "usually in /v1)."
            ) from None
        if len(vectors) != n:
            raise ModelUnavailable(f"{where} returned {len(vectors)} vectors for {n} texts.")
        if vectors and isinstance(vectors[0], list) and vectors[0] and isinstance(vectors[0][0], list):
            raise ModelUnavailable(
                f"{where} returned one vector per token, not one per text: the model has no "
                "pooling. Start the server with pooling (llama-cpp-python: "
                "--kv_overrides <arch>.pooling_type=int:1; llama.cpp: --pooling mean)."
            )
        try:
            out = np.asarray(vectors, dtype=np.float32)
        except (ValueError, TypeError):
            raise ModelUnavailable(
                f"{where} returned vectors of different sizes or non-numbers (base64 output is not supported)."
            ) from None
        if out.ndim != 2 or (check_dim and out.shape[1] != self.dim):
            got = out.shape[1] if out.ndim == 2 else "unknown"
            raise ModelUnavailable(
                f"{where} returned {got}-dimensional vectors for model {self.config.model!r}, "
                f"but embedder_dim is {self.dim}. Set embedder_dim (RAG_EMBEDDER_DIM) to {got}: "
                "a new size starts a new index."
            )
        if not np.isfinite(out).all():
            raise ModelUnavailable(f"{where} returned vectors with NaN or infinite values.")
        return out


def probe(config: ServerConfig) -> int:
    """The vector size the server returns for one short text: one request, as ``config`` says."""
    embedder = OpenAIEmbedder(replace(config, dim=max(config.dim, 1)))
    try:
        return embedder.probe_dim()
    finally:
        embedder.close()


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:160] or type(exc).__name__


def _detail(response: httpx.Response) -> str:
    """The server's own error message, shortened (OpenAI style ``{"error": {"message"}}`` or text)."""
    try:
        body = response.json()
        error = body.get("error", body.get("detail", body)) if isinstance(body, dict) else body
        message = error.get("message", error) if isinstance(error, dict) else error
        text = str(message)
    except ValueError:
        text = response.text
    text = " ".join(text.split())[:160]
    return f" ({text})" if text else ""


def _hint(status: int, config: ServerConfig) -> str:
    if status in (401, 403):
        return "Check embedder_api_key (RAG_EMBEDDER_API_KEY)."
    if status == 404:
        return f"Check embedder_url ({config.base_url}: it ends before /embeddings) and embedder_model."
    return f"Check embedder_model ({config.model!r}) and chunk_size against what the server accepts."


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare for these servers; plain backoff instead
