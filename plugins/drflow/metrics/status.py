"""Green, amber or red for one component, with the reasons, from its metrics. Pure.

Red: proven unrecoverable or out of an objective now — the newest drill, exercise or real recovery failed, the
newest measured recovery took longer than the RTO, no source has a backup in any target, or the current
RPO-compliance report says the component is out of compliance. Amber: not proven or not known now — never
drilled, the last proof older than its schedule allows, a source late or missing in a target, a target
unreadable, no recent RPO-compliance report, the newest measured data loss over the RPO, exercises missed.
Green: none of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from drflow.contracts.metrics import MetricsComponent
from drflow.units import human_duration
from drflow.when import stored_time

PROOF_GRACE = timedelta(hours=1)
"""A drill may run this much after its schedule's longest gap before the proof counts as old."""
LATE_FACTOR = 1.5
"""A source (or a drill) is late when its newest entry is older than this many schedule intervals."""


def _when(evidence: Mapping[str, Any]) -> str:
    at = stored_time(evidence.get("at"))
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "?"


def _red(component: MetricsComponent, metrics: Mapping[str, Any]) -> list[str]:
    reasons = []
    proof, recovery = metrics.get("last_proof"), metrics.get("last_recovery")
    for evidence in (proof, recovery):
        if evidence and not evidence["passed"]:
            what = "recovery plan" if evidence["kind"] == "recovery" else evidence["kind"]
            detail = f": {evidence['detail']}" if evidence.get("detail") else ""
            reasons.append(f"{what} {evidence['name']} failed at {_when(evidence)}{detail}")
    measured = metrics["actual"]
    if measured["rto_met"] is False:
        reasons.append(
            f"the newest measured recovery took {human_duration(measured['rto_s'])}, over the RTO of "
            f"{human_duration(component.rto_s)}"
        )
    rows = [r for r in metrics["backups"] if r["kind"] != "config"]
    if (
        rows
        and not any(r["state"] in ("ok", "late") for r in rows)
        and not any(r["state"] == "unreadable" for r in rows)
    ):
        reasons.append(NOTHING_STORED)
    rpo = metrics.get("rpo_compliance")
    if rpo and not rpo["stale"] and not rpo["compliant"]:
        best = rpo.get("achievable_rpo_s")
        reasons.append(
            "out of RPO compliance: achievable "
            + (human_duration(best) if isinstance(best, int | float) else "nothing")
            + f" against {human_duration(component.rpo_s)}"
            + (f" ({rpo['problems'][0]})" if rpo.get("problems") else "")
        )
    return reasons


def _amber(component: MetricsComponent, metrics: Mapping[str, Any], now: datetime) -> list[str]:
    reasons = []
    proof = metrics.get("last_proof")
    if not component.drills:
        reasons.append("no drill in the spec: nothing proves this component restores")
    elif proof is None:
        reasons.append("never drilled: no drill or exercise report in the store")
    else:
        longest = max(d.interval_s for d in component.drills)
        at = stored_time(proof["at"])
        if at is not None and now - at > timedelta(seconds=LATE_FACTOR * longest) + PROOF_GRACE:
            reasons.append(f"last proven {human_duration((now - at).total_seconds())} ago ({proof['name']})")
    for row in metrics["backups"]:
        where = f"{row['source']} in {row['target']}"
        if row["state"] == "missing":
            reasons.append(f"{where}: no backup yet")
        elif row["state"] == "late":
            reasons.append(
                f"{where}: newest is {human_duration(row['age_s'])} old, the schedule runs every "
                f"{human_duration(row['interval_s'])}"
            )
    for target, error in (metrics.get("unreadable_targets") or {}).items():
        reasons.append(f"storage target {target} could not be read: {error}")
    rpo = metrics.get("rpo_compliance")
    if rpo is None:
        reasons.append("no RPO-compliance report in the store yet")
    elif rpo["stale"]:
        reasons.append(f"the newest RPO-compliance report is {human_duration(rpo['age_s'])} old")
    if metrics["actual"]["rpo_met"] is False:
        reasons.append(
            f"the newest measured data loss was {human_duration(metrics['actual']['rpo_s'])}, over the RPO of "
            f"{human_duration(component.rpo_s)}"
        )
    completion = metrics["exercise_completion"]
    if completion["ratio"] is not None and completion["ratio"] < 1:
        reasons.append(f"exercises done {completion['done']} of {completion['scheduled']} scheduled")
    return reasons


NOTHING_STORED = "no backup of any source in any storage target"


def judge(component: MetricsComponent, metrics: Mapping[str, Any], now: datetime) -> tuple[str, list[str]]:
    red, amber = _red(component, metrics), _amber(component, metrics, now)
    if NOTHING_STORED in red:  # then every source misses in every target: one line says it
        amber = [reason for reason in amber if not reason.endswith(": no backup yet")]
    if red:
        return "red", red + amber
    return ("amber", amber) if amber else ("green", [])
