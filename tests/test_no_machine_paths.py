"""No file of the project names a path of one machine: a clean clone anywhere must work."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home/\w+)/")


def test_no_machine_path_in_the_tracked_files() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".toml", ".txt", ".cfg", ".json", ".jsonl", ".yml", ".yaml", ""}:
            continue
        if name.startswith("eval/results/") or name.startswith("eval/data/") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{name}: {m.group()}" for m in MACHINE_PATH.finditer(text)]
    assert offenders == []
