"""The import contract: layers point one way (core → index → retrieval → answer → pipeline →
edges), the core imports nothing else of the product, and no edge imports the CLI back.

Every import counts, the lazy ones inside functions too: a back edge that works only
because it is lazy breaks the day someone moves it to the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = {"rag.types", "rag.errors", "rag.settings", "rag.lang", "rag.runtime", "rag.filters"}
LAYERS = ("core", "index", "retrieval", "answer", "pipeline", "edge")


def layer(module: str) -> int | None:
    if module in CORE:
        return 0
    if module == "index" or module.startswith("index."):
        return 1
    if module == "rag.retrieve":
        return 2
    if module == "rag.answer" or module.startswith("rag.answer."):
        return 3
    if module in ("rag", "rag.api"):
        return 4
    if module.startswith(("rag.", "ui", "eval")):
        return 5
    return None  # not ours


def modules() -> dict[str, Path]:
    found = {}
    for folder in ("rag", "index", "ui", "eval"):
        for path in (ROOT / folder).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, node.lineno))
    return out


def test_imports_point_down_only() -> None:
    wrong = []
    for name, path in modules().items():
        mine = layer(name)
        for target, line in imports(path):
            theirs = layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                wrong.append(
                    f"{path.relative_to(ROOT)}:{line}: {LAYERS[mine]} {name} imports {LAYERS[theirs]} {target}"
                )
    assert not wrong, "\n".join(wrong)


def test_core_imports_nothing_else_of_the_product() -> None:
    wrong = [
        f"{name} imports {target} (line {line})"
        for name, path in modules().items()
        if name in CORE
        for target, line in imports(path)
        if layer(target) not in (None, 0)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_edge_imports_the_cli() -> None:
    """The CLI dispatches to the other edges (serve, eval, bench, mcp); none of them reaches back."""
    wrong = [
        f"{name} imports {target} (line {line})"
        for name, path in modules().items()
        if name not in ("rag.cli", "rag.__main__")
        for target, line in imports(path)
        if target == "rag.cli"
    ]
    assert not wrong, "\n".join(wrong)


def test_the_contract_sees_a_back_edge(tmp_path: Path) -> None:
    """The check itself: a lazy import of the pipeline inside index/ is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from rag.api import Pipeline\n    return Pipeline\n", encoding="utf-8")
    assert [t for t, _ in imports(bad)] == ["rag.api"] and layer("rag.api") > layer("index.store")
