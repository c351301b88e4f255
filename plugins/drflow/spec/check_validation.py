"""Checks of validation suites that one entry's model cannot see: what a plan's `validate` step can compare with.

A plan step's checks that compare with the backup (checksum, row-count, pgbench with a script) need the
copy the backup became: `node: restored`, restored by a restore step that is not a point-in-time restore
(whose data is not the backup's). The built-in pgbench run creates tables, so it runs on `restored` only. An
`sql` check in a plan step needs `expected` (backups record the drills' SQL values, not the plans').
Read from the raw YAML values, like the other reference checks.
"""

from __future__ import annotations

from typing import Any

from drflow.spec.check_helpers import duplicates as _duplicates
from drflow.spec.check_helpers import items as _items
from drflow.spec.diagnostics import Diagnostic
from drflow.spec.source import Loc, Source

COMPARES_WITH_BACKUP = ("checksum", "row-count")


def check_validation(source: Source) -> list[Diagnostic]:
    data = source.data
    if not isinstance(data, dict):
        return []
    found: list[Diagnostic] = []
    for plan_index, plan in _items(data, "recovery_plans"):
        steps = _items(plan, "steps")
        for position, (step_index, step) in enumerate(steps):
            if step.get("action") != "validate":
                continue
            loc: Loc = ("recovery_plans", plan_index, "steps", step_index)
            suite = _items(step, "suite")
            found += _duplicates(source, (*loc, "suite"), suite, "check", f" in step '{step.get('name')}'")
            restore = _restoring_step([s for _, s in steps[:position]], step.get("component"))
            for entry_index, entry in suite:
                found += _check_entry(source, (*loc, "suite", entry_index), entry, step, restore)
    return found


def _restoring_step(before: list[dict[str, Any]], component: Any) -> dict[str, Any] | None:
    """The nearest earlier restore step of the component (the one whose server `restored` names)."""
    return next((s for s in reversed(before) if s.get("action") == "restore" and s.get("component") == component), None)


def _check_entry(
    source: Source, loc: Loc, entry: dict[str, Any], step: dict[str, Any], restore: dict[str, Any] | None
) -> list[Diagnostic]:
    kind, name, node = entry.get("type", "sql"), entry.get("name"), step.get("node")
    if kind == "sql" and "expected" not in entry:
        message = f"check '{name}' of step '{step.get('name')}' gives no expected value"
        hint = "add expected: (backups record the values of drills' SQL checks, not of plan steps)"
        return [source.diagnostic(loc, message, hint)]
    compares = kind in COMPARES_WITH_BACKUP or (kind == "pgbench" and entry.get("script"))
    writes = kind == "pgbench" and not entry.get("script")
    if (compares or writes) and node != "restored":
        why = (
            "compares with values recorded when the backup was taken, which only a restored copy of it matches"
            if compares
            else "creates pgbench's tables, which drflow does only on a restored copy"
        )
        message = f"check '{name}' ({kind}) {why}, but step '{step.get('name')}' runs on node '{node}'"
        hint = "run it in a step with node: restored after a restore step, or in a drill" + (
            "" if compares else ", or give it a script of read-only queries"
        )
        return [source.diagnostic((*loc, "type"), message, hint)]
    if compares and restore is not None and restore.get("point_in_time") is True:
        message = (
            f"check '{name}' ({kind}) compares with the backup, but restore step '{restore.get('name')}' replays WAL "
            "to a point in time, so the copy holds other data than the backup"
        )
        hint = "compare with fixed values instead (an sql check with expected:), or restore the backup itself"
        return [source.diagnostic((*loc, "type"), message, hint)]
    return []
