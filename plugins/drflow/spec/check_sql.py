"""SQL a check would refuse at run time is reported by ``drflow validate`` already, at its line.

Covers drill validation queries and the ``checks`` of ``validate_sql`` plan steps (raw YAML values).
"""

from __future__ import annotations

from drflow.spec.check_helpers import items as _items
from drflow.spec.diagnostics import Diagnostic
from drflow.spec.source import Loc, Source
from drflow.spec.statement import refusal


def check_sql_statements(source: Source) -> list[Diagnostic]:
    data = source.data
    if not isinstance(data, dict):
        return []
    queries: list[Loc] = []
    for index, component in _items(data, "components"):
        for drill_index, drill in _items(component, "drills"):
            for query_index, _ in _items(drill, "validation"):
                queries.append(("components", index, "drills", drill_index, "validation", query_index, "query"))
    for index, plan in _items(data, "recovery_plans"):
        for step_index, step in _items(plan, "steps"):
            if step.get("action") == "validate_sql":
                for check_index, _ in _items(step, "checks"):
                    queries.append(("recovery_plans", index, "steps", step_index, "checks", check_index, "query"))
    found = []
    for loc in queries:
        query = source.get(loc)
        why = refusal(query) if isinstance(query, str) else None
        if why:
            problem, _, hint = why.partition(": rewrite")
            found.append(source.diagnostic(loc, f"checks never write: {problem}", "rewrite" + hint))
    return found
