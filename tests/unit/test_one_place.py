"""Each shared helper is defined in exactly one module (issue 8 item 3): a copy that drifts fails here."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import drflow

PACKAGE = Path(drflow.__file__).parent

# helper → the one module that defines it
HOMES = {
    "parse_lsn": "engines/postgres/lsn.py",
    "format_lsn": "engines/postgres/lsn.py",
    "parse_duration": "units.py",
    "format_duration": "units.py",
    "parse_size": "units.py",
    "format_size": "units.py",
    "human_duration": "units.py",
    "human_size": "units.py",
    "target_catalogs": "store/factory.py",
    "RetentionPolicy": "retention.py",
    "find_bin_dir": "engines/postgres/bindir.py",
}
# names the old copies had: none may come back under another module
RETIRED = {"human_bytes", "human_seconds", "_format_lsn"}


def _definitions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), filename=where)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found[node.name].append(where)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id].append(where)
    return found


def test_every_shared_helper_has_one_home() -> None:
    found = _definitions()
    wrong = {name: found.get(name, []) for name, home in HOMES.items() if found.get(name, []) != [home]}
    assert not wrong, f"defined elsewhere or more than once (expected {HOMES}): {wrong}"
    assert not {name: found[name] for name in RETIRED if name in found}


def test_no_module_restates_the_retention_literal_or_a_postgres_version_path() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        where = path.relative_to(PACKAGE).as_posix()
        if '"compliance", "governance"' in text and where != "retention.py":
            offenders.append(f"{where}: retention literal")
        if "/usr/lib/postgresql/15" in text:
            offenders.append(f"{where}: hard-coded PostgreSQL 15 binaries")
    assert not offenders, offenders
