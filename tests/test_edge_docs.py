"""The examples in docs/mcp.md and docs/langchain.md, run as a user copies them (the HTTP example
with a free port instead of 7861). A ./rag.toml picks the fake embedder and the extractive
generator: the stdio server inherits the working folder, not the RAG_* variables. The outputs
shown in the docs are from the default models; here the shape of each line is checked."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT, SAMPLE_SOURCES, clean_env, run_rag

from tests.edge_support import McpHttpProcess


def python_blocks(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "docs" / name).read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def docs_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder with ./rag.toml and ./rag-store holding the sample articles; `rag` on PATH."""
    (tmp_path / "rag.toml").write_text('embedder = "fake"\ngenerator = "extractive"\n')
    env = clean_env(PATH=f"{Path(PYTHON).parent}:{os.environ.get('PATH', '')}")
    indexed = run_rag("--store", "rag-store", "index", cwd=tmp_path, env=env)
    assert indexed.code == 0, indexed.err
    return tmp_path, env


def run_script(folder: Path, env: dict[str, str], name: str, code: str) -> list[str]:
    (folder / name).write_text(code)
    proc = subprocess.run([PYTHON, name], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout.splitlines()


def test_mcp_examples(docs_folder: tuple[Path, dict[str, str]]) -> None:
    pytest.importorskip("mcp")
    folder, env = docs_folder
    stdio_example, http_example = python_blocks("mcp.md")
    lines = run_script(folder, env, "stdio_example.py", stdio_example)
    assert lines[0] == "['search_articles', 'ask', 'list_articles', 'get_article']"
    for line in lines[1:3]:
        assert re.match(r"0\.\d{4}  \d{3}_[0-9a-f]+\.txt  chars \d+-\d+  .{50}…$", line), line
    assert lines[3] == "True"  # get_article(source, start, end) gave back the passage
    assert re.search(r"\[\d\]\.$", lines[4]), lines[4]
    assert re.match(r"  \[\d\] \d{3}_[0-9a-f]+\.txt, chars \d+-\d+$", lines[5]), lines[5]
    assert lines[-1] == (
        "True Error executing tool search_articles: Invalid arguments: k: 80 is greater than the maximum of 50."
    )

    with McpHttpProcess(["--store", "rag-store"], folder, {}) as server:
        lines = run_script(folder, env, "http_example.py", http_example.replace("7861", str(server.port)))
    assert [line.split()[0] for line in lines[:5]] == SAMPLE_SOURCES
    assert lines[5] == (
        'Am Mittwoch verkündet Nordkoreas Diktator, sein Land verfüge nun über ein "Atom-U-Boot". '
        "Das Gefährt könne bis zu zehn Raketen mit Nuklearsprengköpfen tragen und abfeuern."
    )
    assert (
        lines[6]
        == "Error executing tool get_article: No indexed article is called 'nope.txt'. `rag sources` lists them."
    )
    assert len(lines) == 11  # the source filter keeps k (3) full
    for line in lines[7:10]:
        assert re.match(r"00[23]_[0-9a-f]+\.txt  chars \d+-\d+  author: (Christina Denk|-)$", line), line
    assert lines[10] == (
        "Error executing tool search_articles: Cannot read the since date 'letzte Woche': write it as "
        "2023-09-12, 2023-09 or 2023."
    )


def test_langchain_example(docs_folder: tuple[Path, dict[str, str]]) -> None:
    pytest.importorskip("langchain_core")
    folder, env = docs_folder
    (example,) = python_blocks("langchain.md")
    lines = run_script(folder, env, "langchain_example.py", example)
    for line in lines[:3]:
        assert re.match(r"0\.\d{4}  \d{3}_[0-9a-f]+\.txt  chars \d+-\d+  .{40}…$", line), line
    assert lines[3] == "True"
    assert re.match(r"\['\d{3}_[0-9a-f]+\.txt', '\d{3}_[0-9a-f]+\.txt'\]$", lines[4]), lines[4]
    assert lines[5] == "Answer only from these passages and cite them as [n]:"
    assert re.match(r"\[1\] \(\d{3}_[0-9a-f]+\.txt, \d+-\d+\) \S", lines[6]), lines[6]
    for line in lines[-4:-2]:  # the source filter keeps k (2) full; the article's author rides along
        assert re.match(r"002_982e29be4fc97f92\.txt  chars \d+-\d+  author: Christina Denk  outlet: -$", line), line
    assert lines[-2] == "error: Cannot read the since date 'letzte Woche': write it as 2023-09-12, 2023-09 or 2023."
    assert lines[-1] == "error: The question is empty: ask something about the articles."
