"""The layout README's "Layout" describes holds: folders import only the layers below them, no import
cycle (module-level or inside functions), no module over 500 lines.

Read from the sources' own import statements (``ast``), so a new import that breaks the rules fails here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "plugins" / "drflow"
MAX_LINES = 500

# What each folder (or top-level module) of drflow may import besides itself: README, "Layout".
ALLOWED: dict[str, set[str]] = {
    "cli": {
        "devtools",
        "metrics",
        "exercises",
        "render",
        "operators",
        "plan",
        "jobs",
        "actions",
        "engines",
        "store",
        "spec",
        "notifiers",
        "audit",
        "hosts",
        "process",
        "connections",
        "workdir",
        "when",
    },
    "devtools": {"jobs", "engines", "store", "spec", "hosts"},
    "exercises": {
        "contracts",
        "jobs",
        "engines",
        "actions",
        "store",
        "spec",
        "hosts",
        "connections",
        "workdir",
        "when",
    },
    "render": {"plan", "notifiers", "spec"},
    "operators": {
        "contracts",
        "metrics",
        "exercises",
        "jobs",
        "engines",
        "actions",
        "store",
        "notifiers",
        "audit",
        "spec",
        "hosts",
        "workdir",
        "when",
    },
    "sensors": {"engines", "triggers"},
    "triggers": {"engines"},
    "plan": {"contracts", "spec", "engines"},
    "jobs": {"contracts", "actions", "engines", "store", "spec", "hosts", "workdir", "when"},
    "metrics": {"contracts", "store", "spec"},
    "dashboard": {"metrics", "plan", "contracts", "spec", "store", "audit"},
    "actions": {"hosts", "process"},
    "engines": {"spec", "hosts", "connections", "process", "workdir"},
    "store": {"connections", "workdir", "engines"},
    "spec": set(),
    "notifiers": set(),
    "audit": set(),
    "hosts": {"process"},
    "process": set(),
    "connections": set(),
    "workdir": set(),
    "when": set(),
    "units": set(),
    "contracts": {"spec"},
    "retention": set(),
    "storage_classes": set(),
    "public_text": set(),
}


# Leaf vocabularies with no drflow import of their own, which every layer may use.
LEAVES = {"units", "retention", "storage_classes", "when", "public_text"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("drflow", *path.relative_to(PACKAGE).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every drflow module ``module`` imports, at any depth (inside functions and TYPE_CHECKING too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


@cache
def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {resolve(name) for name in _imported(module, path) if name.startswith("drflow")}
        graph[module] = {t for t in targets if t is not None and t not in (module, "drflow")}
    return graph


def _folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "drflow"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles (break each by moving the shared name into its own module): {cycles}"


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_over_500_lines() -> None:
    paths = [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    long = {str(p.relative_to(ROOT)): n for p in paths if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them along their seams, one job each): {long}"


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_a_folder_imports_only_the_layers_below_it(folder: str) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if _folder(module) == folder
        for target in targets
        if _folder(target) not in ALLOWED[folder] | LEAVES | {folder}
    )
    assert not wrong, f"{folder}/ may import only {sorted(ALLOWED[folder])} (README, Layout): {wrong}"


def test_every_folder_has_its_rule() -> None:
    folders = {_folder(module) for module in _modules()} - {"drflow"}
    assert folders <= set(ALLOWED), f"add {sorted(folders - set(ALLOWED))} to ALLOWED and to README's Layout"
