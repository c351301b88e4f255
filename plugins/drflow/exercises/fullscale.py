"""A full-scale exercise's result from the plan run's recovery record. Pure.

The measured RTO is the record's recovery time (run start to the end of the last verification step), the
measured RPO its data loss (what the promotion or restore lost). The exercise passes when the plan recovered
within both objectives; a refused declaration, a failed step or a missed objective fails it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drflow.contracts import ExerciseFacts


def not_started(facts: ExerciseFacts, start: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The finding of an exercise whose real plan never ran."""
    if start and start.get("by") and not start.get("started"):
        why = f"{start['by']} answered Reject at the start: the plan did not run"
    elif start and start.get("started"):
        why = f"started by {start.get('by')}, but {facts.plan_dag_id} could not be triggered (see trigger_plan)"
    else:
        why = "nobody confirmed the start in time: the plan did not run"
    return [{"step": "start", "ok": False, "detail": why}]


def record_findings(record: Mapping[str, Any], facts: ExerciseFacts) -> tuple[str, float | None, float | None, list]:
    """``(outcome, rto_s, rpo_s, findings)`` of the exercise from the plan run's recovery record."""
    recovery = record.get("recovery") or {}
    loss = record.get("data_loss") or {}
    rto_s, rpo_s = recovery.get("measured_s"), loss.get("measured_s")
    findings: list[dict[str, Any]] = [
        {
            "step": str(step.get("task_id")),
            "ok": step.get("state") in ("success", "skipped") and record.get("outcome") != "refused",
            "detail": f"{step.get('outcome') or step.get('state')}"
            + (f" in {step['duration_s']:.1f}s" if isinstance(step.get("duration_s"), int | float) else ""),
        }
        for step in record.get("steps") or []
    ]
    outcome = str(record.get("outcome"))
    findings.insert(0, {"step": "plan-run", "ok": outcome == "recovered", "detail": f"the plan run {outcome}"})
    if rto_s is None and outcome == "recovered":
        findings.append({"step": "rto", "ok": False, "detail": "the record measured no recovery time"})
    elif rto_s is not None:
        ok = rto_s <= facts.rto_s
        findings.append({"step": "rto", "ok": ok, "detail": f"recovered in {rto_s:.1f}s, RTO {facts.rto_s}s"})
    if rpo_s is not None:
        ok = rpo_s <= facts.rpo_s
        findings.append({"step": "rpo", "ok": ok, "detail": f"lost {rpo_s:.1f}s of data, RPO {facts.rpo_s}s"})
    findings += [{"step": "record", "ok": False, "detail": str(p)} for p in record.get("problems") or []]
    passed = outcome == "recovered" and all(f["ok"] for f in findings)
    return ("passed" if passed else "failed"), rto_s, rpo_s, findings
