"""SQL a check would refuse at run time is reported by ``drflow validate`` already, at its line.

Covers drill validation queries, the ``checks`` of ``validate_sql`` plan steps, and the queries and pgbench
scripts of validation suites (drills and ``validate`` steps), from the raw YAML values.
"""

from __future__ import annotations

from typing import Any

from drflow.spec.check_helpers import items as _items
from drflow.spec.diagnostics import Diagnostic
from drflow.spec.source import Loc, Source
from drflow.spec.statement import refusal, script_refusal


def check_sql_statements(source: Source) -> list[Diagnostic]:
    data = source.data
    if not isinstance(data, dict):
        return []
    suites: list[tuple[Loc, list[tuple[int, dict[str, Any]]]]] = []
    for index, component in _items(data, "components"):
        for drill_index, drill in _items(component, "drills"):
            loc: Loc = ("components", index, "drills", drill_index, "validation")
            suites.append((loc, _items(drill, "validation")))
    queries: list[Loc] = []
    scripts: list[Loc] = []
    for index, plan in _items(data, "recovery_plans"):
        for step_index, step in _items(plan, "steps"):
            step_loc: Loc = ("recovery_plans", index, "steps", step_index)
            if step.get("action") == "validate_sql":
                for check_index, _ in _items(step, "checks"):
                    queries.append((*step_loc, "checks", check_index, "query"))
            if step.get("action") == "validate":
                suites.append(((*step_loc, "suite"), _items(step, "suite")))
    for loc, entries in suites:
        for entry_index, entry in entries:
            if entry.get("type", "sql") in ("sql", "orphans"):
                queries.append((*loc, entry_index, "query"))
            elif entry.get("type") == "pgbench" and "script" in entry:
                scripts.append((*loc, entry_index, "script"))
    found = []
    for loc in queries:
        query = source.get(loc)
        why = refusal(query) if isinstance(query, str) else None
        if why:
            problem, _, hint = why.partition(": rewrite")
            found.append(source.diagnostic(loc, f"checks never write: {problem}", "rewrite" + hint))
    for loc in scripts:
        script = source.get(loc)
        why = script_refusal(script) if isinstance(script, str) else None
        if why:
            problem, _, hint = why.rpartition(": ")
            found.append(source.diagnostic(loc, f"a pgbench check never writes: {problem}", hint))
    return found
