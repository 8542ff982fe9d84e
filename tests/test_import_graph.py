"""The imports inside vae_hub run one way: no module imports itself back through others (type-only imports count),
and the sub-packages stand on floors: each imports only from the floors below it.

Run as a script to print the graph between sub-packages, then the modules': python tests/test_import_graph.py
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


FLOORS = [  # lowest first: a folder may import from its own floor's modules only when it is the utilities' floor
    ["errors"],
    ["utilities"],  # the modules at the top of vae_hub: fileio, limits, images, precision, allocator, settings
    ["hub", "data"],
    ["models"],
    ["evaluation"],
    ["training"],
    ["space"],
    ["cli"],
]
TOP_LEVEL = {"errors", "fileio", "limits", "images", "precision", "allocator", "settings"}


def folder_of(module: str) -> str | None:
    """The sub-package a module belongs to ("utilities" for the small modules at the top; None for the package's
    face, ``vae_hub/__init__.py`` and ``__main__``, which stand above everything)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return None
    if len(parts) == 2 and parts[1] in TOP_LEVEL:
        return "errors" if parts[1] == "errors" else "utilities"
    return parts[1]


def floor(folder: str) -> int:
    return next(i for i, names in enumerate(FLOORS) if folder in names)


def folder_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = folder_of(module)
        if source is None:
            continue
        edges.setdefault(source, set())
        edges[source] |= {f for f in map(folder_of, targets) if f not in (None, source)}
    return edges


def test_no_import_cycles_in_vae_hub():
    graph = import_graph()
    assert "vae_hub.models.base" in graph["vae_hub.models.mlp"]  # the graph is read at all
    assert cycles(graph) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_is_in_a_folder_of_the_plan():
    unplanned = {m for m in import_graph() if folder_of(m) is not None and not any(folder_of(m) in f for f in FLOORS)}
    assert unplanned == set(), f"modules outside the planned sub-packages (add them to FLOORS): {unplanned}"


def test_the_sub_packages_import_only_downwards():
    upward = [
        f"{source} -> {target}"
        for source, targets in folder_graph(import_graph()).items()
        for target in targets
        if floor(target) >= floor(source)
    ]
    assert upward == [], f"imports that do not run down the floors {FLOORS}: {upward}"


def test_the_floor_check_catches_an_import_back_up():
    graph = {"vae_hub.models.base": {"vae_hub.training.config"}, "vae_hub.training.config": set()}
    assert folder_graph(graph) == {"models": {"training"}, "training": set()}
    assert floor("training") > floor("models")


def test_the_low_floors_need_nothing_above_them():
    graph = import_graph()
    assert graph["vae_hub.fileio"] == set() and graph["vae_hub.errors"] == set()
    assert graph["vae_hub.settings"] == set() and graph["vae_hub.hub.safetensors_reader"] == {"vae_hub.errors"}
    assert graph["vae_hub.limits"] == {"vae_hub.errors"}
    assert graph["vae_hub.hub.files"] == {"vae_hub.errors", "vae_hub.limits"}
    assert graph["vae_hub.models.objectives"] == {"vae_hub.models.posterior"}
    assert graph["vae_hub.models.posterior"] == set()


if __name__ == "__main__":
    graph = import_graph()
    for folder, targets in sorted(folder_graph(graph).items(), key=lambda item: -floor(item[0])):
        print(
            f"{folder} (floor {floor(folder)}) -> {', '.join(sorted(targets, key=floor, reverse=True)) or '(nothing)'}"
        )
    print()
    for module, targets in graph.items():
        print(f"{module} -> {', '.join(sorted(t.removeprefix('vae_hub.') for t in targets)) or '(nothing)'}")
    print("cycles:", cycles(graph) or "none")
