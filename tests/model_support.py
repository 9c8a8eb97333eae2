"""The packaged GGUF models for slow tests, without joining 1 GB per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def packaged_model_cache(target: Path, model: str = "qwen2.5-1.5b") -> Path:
    """A cache dir holding the joined ``model``: linked from the user's cache when it is
    there and verified (no 1 GB copy), else joined into ``target`` from the parts."""
    from rag.answer.models import MODELS, model_file
    from rag.errors import ModelUnavailable
    from rag.settings import Settings

    name = MODELS[model].name
    default = Settings().cache_dir / "models"
    models = target / "models"
    models.mkdir(parents=True, exist_ok=True)
    if (default / f"{name}.gguf").is_file() and (default / f"{name}.verified.json").is_file():
        (models / f"{name}.gguf").symlink_to(default / f"{name}.gguf")
        shutil.copy(default / f"{name}.verified.json", models / f"{name}.verified.json")
    try:
        model_file(model, target)  # verifies the link's marker, or joins afresh
    except ModelUnavailable as exc:
        pytest.skip(str(exc))
    return target
