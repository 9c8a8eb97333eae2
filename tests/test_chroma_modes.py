"""Both Chroma modes: the embedded local folder and a real `chroma run` server."""

from __future__ import annotations

from pathlib import Path

from conftest import SAMPLE_SOURCES, assert_one_line_error, free_port

from rag.api import Pipeline, open_store
from rag.errors import StoreUnavailable
from rag.settings import Settings

QUESTION = "Wie viele Raketen mit Nuklearsprengköpfen kann das Atom-U-Boot tragen?"


def test_local_folder_persists_across_pipelines(tmp_path: Path) -> None:
    store = tmp_path / "store"
    report = open_store(store, embedder="fake").index()
    assert sorted(report.added) == SAMPLE_SOURCES
    assert (store / "chroma.sqlite3").is_file()
    assert list(store.glob("keyword-*.sqlite"))

    reopened = open_store(store, embedder="fake")
    assert [i.source for i in reopened.sources()] == SAMPLE_SOURCES
    top = reopened.retrieve(QUESTION, k=1)[0]
    assert top.source == "004_7f32bc9d79f56e77.txt" and "zehn Raketen" in top.text


def test_server_mode_index_and_retrieve(chroma_server: str, tmp_path: Path, cli, monkeypatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("RAG_CACHE_DIR", str(cache))  # settings from the environment, flags on top
    base = ["--chroma-url", chroma_server, "--embedder", "fake"]
    result = cli(*base, "index", "--json")
    assert result.code == 0, result.err
    assert sorted(result.json()["added"]) == SAMPLE_SOURCES
    assert not (tmp_path / "store").exists()  # nothing went to a local folder
    assert list((cache / "keyword").glob("*.sqlite"))  # the keyword index lives in the cache

    retrieved = cli(*base, "retrieve", "--json", "-k", "2", QUESTION)
    assert retrieved.code == 0, retrieved.err
    passages = retrieved.json()["passages"]
    assert len(passages) == 2
    assert passages[0]["source"] == "004_7f32bc9d79f56e77.txt" and "zehn Raketen" in passages[0]["text"]

    # Another client of the same server sees the same articles; a rerun embeds nothing.
    other = Pipeline(Settings(chroma_url=chroma_server, cache_dir=tmp_path / "other-cache", embedder="fake"))
    assert [i.source for i in other.sources()] == SAMPLE_SOURCES
    assert other.index().chunks == 0
    assert other.retrieve(QUESTION, k=1)[0].id == passages[0]["id"]  # its keyword index was rebuilt from Chroma


def test_unreachable_server_is_one_clear_error(tmp_path: Path, cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    try:
        Pipeline(Settings(chroma_url=url, cache_dir=tmp_path / "cache", embedder="fake"))
    except StoreUnavailable as exc:
        assert url in str(exc) and "chroma run" in str(exc)
    else:
        raise AssertionError("opening a dead server must fail")
    assert_one_line_error(cli("--chroma-url", url, "--embedder", "fake", "sources"), StoreUnavailable.exit_code, url)
