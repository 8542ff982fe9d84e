"""The imports inside vae_hub run one way: no module imports itself back through others (type-only imports count).

Run as a script to print the graph: python tests/test_import_graph.py
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vae_hub"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The vae_hub modules that ``path`` imports, anywhere in it (top level, functions, TYPE_CHECKING blocks)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:  # "from .x import y": y may be a module or a name in x
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
                break
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    # a package's __init__ is imported on the way to any of its modules; only its own imports make edges from it
    return {module_name(p): imports_of(p, modules) for p in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_in_vae_hub():
    graph = import_graph()
    assert "vae_hub.base" in graph["vae_hub.models"]  # the graph is read at all
    assert cycles(graph) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_low_floors_need_nothing_above_them():
    graph = import_graph()
    assert graph["vae_hub.fileio"] == set() and graph["vae_hub.errors"] == set()
    assert graph["vae_hub.config_fields"] == set() and graph["vae_hub.safetensors_io"] == set()
    assert graph["vae_hub.limits"] == {"vae_hub.errors"}
    assert graph["vae_hub.model_files"] == {"vae_hub.errors", "vae_hub.limits"}
    low = {"vae_hub.errors", "vae_hub.fileio", "vae_hub.config_fields", "vae_hub.limits", "vae_hub.safetensors_io"}
    assert graph["vae_hub.hub"] == low | {"vae_hub.model_files"}
    assert graph["vae_hub.losses"] == set()


if __name__ == "__main__":
    for module, targets in import_graph().items():
        print(f"{module} -> {', '.join(sorted(t.removeprefix('vae_hub.') for t in targets)) or '(nothing)'}")
    print("cycles:", cycles(import_graph()) or "none")
