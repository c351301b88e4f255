"""`drflow walkthrough`: every step of a recovery plan in check-only mode, without Airflow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drflow.cli.common import fail, load_one, out


def walkthrough(spec_path: Path, plan_name: str, as_json: bool, record: str | None) -> None:
    from drflow.exercises.walkthrough import check_plan_tasks
    from drflow.plan.exercise_walkthrough import walkthrough_checks
    from drflow.plan.recovery import plan_graph

    spec = load_one(spec_path).spec
    plan = next((p for p in spec.recovery_plans if p.name == plan_name), None)
    if plan is None:
        known = ", ".join(p.name for p in spec.recovery_plans) or "none"
        raise fail(f"spec {spec_path} has no recovery plan {plan_name!r} (its plans: {known}); give one to --plan")
    started = datetime.now(UTC)
    findings = check_plan_tasks(walkthrough_checks(plan_graph(spec, plan, str(spec_path))))
    result: dict[str, Any] = {"spec": spec.metadata.name, "plan": plan.name, "findings": findings}
    if record is not None:
        result = _record(spec, plan.name, record, findings, started)
    if as_json:
        out.print(json.dumps(result, indent=2, default=str), markup=False, highlight=False, soft_wrap=True)
    else:
        _print(plan.name, findings, result.get("stored"))
    if not all(f["ok"] for f in findings) or (result.get("stored") or {}).get("failed"):
        raise fail(f"{sum(not f['ok'] for f in findings)} step(s) of plan {plan.name} would fail today", code=1)


def _record(spec: Any, plan: str, name: str, findings: list[dict[str, Any]], started: datetime) -> dict[str, Any]:
    from drflow.exercises.walkthrough import walkthrough_result
    from drflow.plan.exercise_common import exercise_facts
    from drflow.store.exercise_results import write_exercise_result

    exercise = next((e for e in spec.exercises if e.name == name), None)
    if exercise is None or exercise.type != "walkthrough" or exercise.plan != plan:
        known = ", ".join(e.name for e in spec.exercises if e.type == "walkthrough" and e.plan == plan) or "none"
        raise fail(f"--record {name}: not a walkthrough exercise of plan {plan} in the spec (those are: {known})")
    result = walkthrough_result(
        exercise_facts(spec, exercise), findings, started, datetime.now(UTC), dag_id=None, run_id="cli"
    )
    result["stored"] = write_exercise_result(result, [t.model_dump(mode="json") for t in spec.storage])
    return result


def _print(plan: str, findings: list[dict[str, Any]], stored: dict[str, Any] | None) -> None:
    from rich.table import Table

    table = Table(title=f"walkthrough of plan {plan} (check only: nothing was changed)", show_lines=False)
    for column in ("step", "action", "ready", "why"):
        table.add_column(column, overflow="fold")
    for finding in findings:
        ready = "[green]ready[/green]" if finding["ok"] else "[red]WOULD FAIL[/red]"
        table.add_row(finding["step"], finding.get("action", ""), ready, finding["detail"], end_section=False)
    out.print(table)
    if stored is not None:
        from drflow.store.exercise_results import written_summary

        out.print(f"result stored: {written_summary(stored)}", markup=False, highlight=False)
