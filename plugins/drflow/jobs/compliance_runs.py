"""Compliance evidence of what was rehearsed and what happened: drills, exercises and incidents of a period.

Read from the reports in the store (each report once, whichever targets hold it):

- ``drill`` reports: restore drills (``drill``, ``started_at``, ``passed``, ``restore_s`` against ``rto_s``), snapshot
  drills (older ones without a drill name: the report's name ends in ``restore_snapshot``) and config drills;
- ``exercise`` reports (``exercise``, ``type``, ``started_at``, ``outcome``, ``measured``/``objectives``,
  ``findings``), against the schedules of the spec's exercise program;
- ``recovery`` records of recovery-plan runs: outcome, recovery time and data lost against the objectives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from drflow.jobs.compliance_period import Period, coverage
from drflow.spec.exercises import ExerciseSchedule
from drflow.spec.model import Component
from drflow.when import stored_time

_STAMP = re.compile(r"^(\d{8}T\d{6}Z)-(.+)$")
SNAPSHOT_DRILL_TASK = "restore_snapshot"
CONFIG_DRILL = "config"


def report_time(name: str, report: Mapping[str, Any], *keys: str) -> datetime | None:
    """When a report's run started: the first of ``keys`` it has, else the stamp its name starts with."""
    for key in keys:
        parsed = stored_time(_nested(report, key))
        if parsed is not None:
            return parsed
    match = _STAMP.match(name)
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if match else None


def _nested(report: Mapping[str, Any], key: str) -> Any:
    value: Any = report
    for part in key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def drill_name(name: str, report: Mapping[str, Any], component: Component) -> str | None:
    """The drill a report belongs to: its ``drill``, else the name after the time stamp."""
    if report.get("drill"):
        return str(report["drill"])
    match = _STAMP.match(name)
    suffix = match.group(2) if match else name
    if suffix == SNAPSHOT_DRILL_TASK:  # written before snapshot drill reports carried their drill's name
        methods = {p.name: p.method for p in component.backup_policies}
        snapshot = [d.name for d in component.drills if d.policy and methods.get(d.policy) == "snapshot"]
        return snapshot[0] if len(snapshot) == 1 else None
    return suffix


def drill_evidence(
    component: Component, reports: Mapping[str, Mapping[str, Any]], period: Period, now: datetime
) -> list[dict[str, Any]]:
    """Every drill of the component (its config's too) with the runs its schedule asked for and their results."""
    schedules = {drill.name: drill.schedule for drill in component.drills}
    if component.config is not None and component.config.drill is not None:
        schedules[CONFIG_DRILL] = component.config.drill.schedule
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in schedules}
    started: dict[str, list[datetime]] = {name: [] for name in schedules}
    for name, report in reports.items():
        drill = drill_name(name, report, component)
        when = report_time(name, report, "started_at")
        if drill is None or when is None:
            continue
        started.setdefault(drill, []).append(when)
        if when in period:
            results.setdefault(drill, []).append(_drill_result(report, when))
    found = []
    for drill, runs in results.items():
        schedule = schedules.get(drill)
        passed = sum(1 for r in runs if r["passed"])
        found.append(
            {
                "drill": drill,
                "schedule": schedule,
                "runs": coverage(schedule, period, started[drill], now).to_json() if schedule else None,
                "done": len(runs),
                "passed": passed,
                "failed": len(runs) - passed,
                "results": sorted(runs, key=lambda r: str(r["started_at"])),
            }
        )
    return found


def _drill_result(report: Mapping[str, Any], when: datetime) -> dict[str, Any]:
    measured = report.get("restore_s") if report.get("total_s") is None else report.get("total_s")
    return {
        "started_at": when.isoformat(),
        "passed": bool(report.get("passed")),
        "backup_id": report.get("backup_id") or report.get("version_id"),
        "restore_s": measured,
        "rto_s": report.get("rto_s"),
        "rto_met": report.get("rto_met"),
        "from": report.get("storage_target") or report.get("region") or report.get("target"),
        "problems": list(report.get("problems") or []),
    }


def exercise_evidence(
    schedules: Sequence[ExerciseSchedule],
    reports: Mapping[str, Mapping[str, Mapping[str, Any]]],
    period: Period,
    now: datetime,
) -> list[dict[str, Any]]:
    """Each scheduled exercise affecting the component (and any unscheduled one it took part in), with results."""
    by_exercise: dict[str, list[tuple[datetime, Mapping[str, Any]]]] = {}
    for name, report in reports.get("exercise", {}).items():
        when = report_time(name, report, "started_at")
        if when is not None and report.get("exercise"):
            by_exercise.setdefault(str(report["exercise"]), []).append((when, report))
    names = list(dict.fromkeys([*(s.name for s in schedules), *by_exercise]))
    found = []
    for exercise in names:
        schedule = next((s for s in schedules if s.name == exercise), None)
        done = sorted((w, r) for w, r in by_exercise.get(exercise, []) if w in period)
        if schedule is None and not done:
            continue
        runs = None
        if schedule is not None and not schedule.paused:
            runs = coverage(schedule.schedule, period, [w for w, _ in by_exercise.get(exercise, [])], now).to_json()
        found.append(
            {
                "exercise": exercise,
                "schedule": schedule.schedule if schedule else None,
                "paused": schedule.paused if schedule else None,
                "runs": runs,
                "done": len(done),
                "passed": sum(1 for _, r in done if r.get("outcome") == "passed"),
                "results": [_exercise_result(r, w) for w, r in done],
            }
        )
    return found


def _exercise_result(report: Mapping[str, Any], when: datetime) -> dict[str, Any]:
    measured = report.get("measured") or {}
    objectives = report.get("objectives") or {}
    findings = list(report.get("findings") or [])
    return {
        "started_at": when.isoformat(),
        "type": report.get("type"),
        "plan": report.get("plan"),
        "outcome": report.get("outcome"),
        "rto_s": measured.get("rto_s"),
        "rto_objective_s": objectives.get("rto_s"),
        "rpo_s": measured.get("rpo_s"),
        "rpo_objective_s": objectives.get("rpo_s"),
        "findings": len(findings),
        "gaps": [f"{f.get('step')}: {f.get('detail')}" for f in findings if not f.get("ok", True)],
    }


def incident_id(record: Mapping[str, Any], name: str) -> str:
    """The same for every copy of one plan run's record: its plan and run id (else its report name)."""
    return f"{record.get('plan')}/{record['run_id']}" if record.get("run_id") else name


def incident_evidence(component: str, records: Mapping[str, Mapping[str, Any]], period: Period) -> list[dict[str, Any]]:
    """Recovery-plan runs that affected the component in the period, with measured RTO and data lost."""
    found: dict[str, dict[str, Any]] = {}
    for name, record in records.items():
        if component not in (record.get("components") or [component]):
            continue
        when = report_time(name, record, "run.start", "run.queued_at", "recorded_at")
        if when is None or when not in period:
            continue
        recovery = record.get("recovery") or {}
        lost = record.get("data_loss") or {}
        # One incident, however many targets (and components) hold a copy of its record.
        found.setdefault(
            incident_id(record, name),
            {
                "started_at": when.isoformat(),
                "plan": record.get("plan"),
                "scenario": record.get("scenario"),
                "run_id": record.get("run_id"),
                "outcome": record.get("outcome"),
                "reason": record.get("reason"),
                "triggered_by": (record.get("triggered_by") or {}).get("user"),
                "rto_s": recovery.get("measured_s"),
                "rto_objective_s": recovery.get("rto_s"),
                "rto_met": recovery.get("rto_met"),
                "rpo_s": lost.get("measured_s"),
                "rpo_objective_s": lost.get("rpo_s"),
                "rpo_met": lost.get("rpo_met"),
            },
        )
    return sorted(found.values(), key=lambda i: str(i["started_at"]))
