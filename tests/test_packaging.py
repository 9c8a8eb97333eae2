"""``pip install .`` from a clean tree gives a working ``rag``, without the Makefile.

The wheel is built from the tracked and new files only (what a clean clone holds, no stale
``build/``), without build isolation (setuptools from this venv: no index needed), and
installed with ``--no-deps`` into an empty venv. Its dependencies come from this venv's
site-packages through a ``.pth`` line added after the install: the whole stack again
(torch included) would be gigabytes, and pip never sees this venv's editable install.
Then ``rag`` runs from outside the repository, so only the wheel's own files can serve it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT, SAMPLE_SOURCES, clean_env

PACKAGES = ("rag", "index", "ui", "eval")
NOT_SHIPPED = ("eval/results/", "eval/README.md")  # reports and notes for developers, not read at run time


def _tree_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return [f for f in out if (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    for name in _tree_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    proc = subprocess.run(
        [
            PYTHON,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            str(src),
            "-w",
            str(base / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (found,) = (base / "dist").glob("rag_news-*.whl")
    return found


def test_the_wheel_holds_every_file_the_code_reads(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = [
        f
        for f in _tree_files()
        if f.startswith(tuple(p + "/" for p in PACKAGES))
        and not f.endswith(".py")
        and not f.startswith(NOT_SHIPPED)
        and "__pycache__" not in f
    ]
    assert "rag/answer/calibration.json" in data  # the decision's fitted model: `rag ask` fails without it
    assert sorted(set(data) - names) == []
    assert {f"rag/data/sample_articles/{s}" for s in SAMPLE_SOURCES} <= names
    python = {f for f in _tree_files() if f.startswith(tuple(p + "/" for p in PACKAGES)) and f.endswith(".py")}
    assert sorted(python - names) == []
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "build/"))]


@pytest.mark.slow
def test_pip_install_gives_a_working_rag(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [PYTHON, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert install.returncode == 0, install.stderr[-3000:]
    site = next((env_dir / "lib").glob("python3.*/site-packages"))
    ours = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "chromadb").is_dir())
    (site / "zz_dependencies.pth").write_text(f"{ours}\n")  # after the install: pip never saw these

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = clean_env(
        RAG_STORE=str(tmp_path / "store"),
        RAG_CACHE_DIR=str(tmp_path / "cache"),
        RAG_EMBEDDER="fake",
        RAG_GENERATOR="extractive",
    )

    def rag(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(env_dir / "bin" / "rag"), *argv], cwd=work, env=env, capture_output=True, text=True, timeout=300
        )

    doctor = rag("doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert doctor.stdout.splitlines()[0] == f"rag-news 0.1.0 at {site / 'rag'}"  # the wheel's copy, not the repo
    indexed = rag("index")  # the sample articles, from the installed package data
    assert indexed.returncode == 0, indexed.stderr
    assert indexed.stdout.startswith(f"{len(SAMPLE_SOURCES)} added, 0 updated")
    asked = rag("ask", "--json", "Wann treffen sich Kim und Putin?")
    assert asked.returncode == 0, asked.stderr
    calibrated = subprocess.run(
        [
            str(python),
            "-c",
            "from rag.answer.decision import CALIBRATION_FILE, Answerability;"
            "Answerability.load(); print(CALIBRATION_FILE)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert calibrated.returncode == 0, calibrated.stderr
    assert calibrated.stdout.strip() == str(site / "rag" / "answer" / "calibration.json")
