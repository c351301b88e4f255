"""The result of an exercise (report kind `exercise`): its JSON, and writing it into every storage target.

Every exercise type (tabletop, walkthrough, simulation, full-scale) builds its result with
:func:`exercise_result` and stores it with :func:`write_exercise_result`: once per component the plan
affects, in every target of the spec, each target on its own (one that is down never blocks the others).
The keys below are read by the DR metrics, the report and the dashboard: add keys, never rename these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

REPORT_KIND = "exercise"
FORMAT_VERSION = 1
OUTCOMES = ("passed", "failed")


def exercise_result(
    *,
    spec: str,
    exercise: str,
    type: str,
    plan: str,
    scenario: str,
    components: Sequence[str],
    dag_id: str | None,
    run_id: str | None,
    started_at: datetime,
    finished_at: datetime,
    participants: Sequence[str],
    outcome: str,
    rto_s: float | None,
    rpo_s: float | None,
    objectives: tuple[int, int],
    findings: Sequence[Mapping[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    """The result JSON; ``objectives`` is (RTO, RPO) in seconds, ``findings`` items have step, ok and detail."""
    if outcome not in OUTCOMES:
        raise ValueError(f"exercise outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    started, finished = _utc(started_at), _utc(finished_at)
    return {
        "kind": REPORT_KIND,
        "format_version": FORMAT_VERSION,
        "spec": spec,
        "exercise": exercise,
        "type": type,
        "plan": plan,
        "scenario": scenario,
        "components": list(components),
        "dag_id": dag_id,
        "run_id": run_id,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_s": round((finished - started).total_seconds(), 3),
        "participants": list(participants),
        "outcome": outcome,
        "measured": {"rto_s": _seconds(rto_s), "rpo_s": _seconds(rpo_s)},
        "objectives": {"rto_s": int(objectives[0]), "rpo_s": int(objectives[1])},
        "findings": [
            {"step": str(f["step"]), "ok": bool(f["ok"]), "detail": str(f.get("detail") or ""), **_more(f)}
            for f in findings
        ],
        **extra,
    }


def result_name(result: Mapping[str, Any]) -> str:
    """`<start stamp>-<exercise>`: stable for every try of one run, sortable by time."""
    started = datetime.fromisoformat(str(result["started_at"]))
    return f"{_utc(started):%Y%m%dT%H%M%SZ}-{result['exercise']}"


def write_exercise_result(result: Mapping[str, Any], targets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Store ``result`` in every target, once per component; ``{"written": {target: [keys]}, "failed": {target:
    why}}``. A target that cannot be opened or written is reported and the others are still written."""
    from drflow.store.report_copies import write_everywhere

    components = [str(c) for c in result["components"]]
    return write_everywhere(str(result["spec"]), components, REPORT_KIND, result_name(result), result, targets)


def written_summary(outcome: Mapping[str, Any]) -> str:
    """One line for logs and errors: where the result went, and which targets failed and why."""
    from drflow.store.report_copies import written_summary as summary

    return summary(outcome, "no storage target in the spec: the result is in XCom only")


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _more(finding: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in finding.items() if k not in ("step", "ok", "detail")}
