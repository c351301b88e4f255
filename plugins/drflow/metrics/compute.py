"""DR metrics per component and per spec, from what :mod:`drflow.metrics.gather` read. Pure.

Actual RTO and RPO come from the newest drill, exercise or real recovery that measured them; rates count
the evidence of the period (each drill, exercise or recovery once, however many targets hold its report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from statistics import mean
from typing import Any

from drflow.contracts.metrics import MetricsComponent, MetricsRun
from drflow.metrics.evidence import DRILL, EXERCISE, RECOVERY, Evidence
from drflow.metrics.gather import TargetRead
from drflow.metrics.schedule import completion
from drflow.metrics.status import LATE_FACTOR, judge

FORMAT_VERSION = 1


def attribute(reads: Mapping[str, Sequence[TargetRead]]) -> dict[str, list[Evidence]]:
    """Each component's evidence, once each: a record of a plan over several components counts for each."""
    seen: dict[tuple[str, ...], tuple[str, Evidence]] = {}
    for owner, target_reads in reads.items():
        for read in target_reads:
            for evidence in read.evidence:
                seen.setdefault(evidence.identity, (owner, evidence))
    result: dict[str, list[Evidence]] = {name: [] for name in reads}
    for owner, evidence in seen.values():
        for name in evidence.components or (owner,):
            if name in result:
                result[name].append(evidence)
    return {name: sorted(found, key=lambda e: e.at) for name, found in result.items()}


def _ratio(good: int, total: int) -> float | None:
    return None if total == 0 else round(good / total, 4)


def rates(evidence: Sequence[Evidence]) -> dict[str, Any]:
    """Recovery and validation success, and mean time to recovery, of the evidence given (one period)."""
    attempts = [e for e in evidence if e.recovers]
    by_kind = {
        kind: {"attempts": n, "succeeded": ok, "ratio": _ratio(ok, n)}
        for kind in (DRILL, EXERCISE, RECOVERY)
        if (n := sum(1 for e in attempts if e.kind == kind))
        for ok in [sum(1 for e in attempts if e.kind == kind and e.passed)]
    }
    checks = sum(e.checks for e in evidence)
    checks_passed = sum(e.checks_passed for e in evidence)
    recovered = [e.rto_s for e in evidence if e.kind == RECOVERY and e.passed and e.rto_s is not None]
    rehearsed = [e.rto_s for e in attempts if e.kind != RECOVERY and e.rto_s is not None]
    succeeded = sum(1 for e in attempts if e.passed)
    return {
        "recovery": {"attempts": len(attempts), "succeeded": succeeded, "ratio": _ratio(succeeded, len(attempts))},
        "recovery_by_kind": by_kind,
        "validation": {"checks": checks, "passed": checks_passed, "ratio": _ratio(checks_passed, checks)},
        "mttr_s": round(mean(recovered), 3) if recovered else None,
        "recoveries": len(recovered),
        "mean_rehearsed_recovery_s": round(mean(rehearsed), 3) if rehearsed else None,
    }


def actual(component: MetricsComponent, evidence: Sequence[Evidence]) -> dict[str, Any]:
    """The newest measured recovery time and data loss, against the objectives."""
    timed = [e for e in evidence if e.recovers and e.rto_s is not None]
    lossy = [e for e in evidence if e.recovers and e.rpo_s is not None]
    rto = timed[-1] if timed else None
    rpo = lossy[-1] if lossy else None
    return {
        "rto_s": rto.rto_s if rto else None,
        "rto_from": rto.to_json() if rto else None,
        "rto_met": None if rto is None or rto.rto_s is None else rto.rto_s <= component.rto_s,
        "rpo_s": rpo.rpo_s if rpo else None,
        "rpo_from": rpo.to_json() if rpo else None,
        "rpo_met": None if rpo is None or rpo.rpo_s is None else rpo.rpo_s <= component.rpo_s,
        "worst_rto_s": max((e.rto_s for e in timed if e.rto_s is not None), default=None),
        "worst_rpo_s": max((e.rpo_s for e in lossy if e.rpo_s is not None), default=None),
    }


def backup_ages(component: MetricsComponent, reads: Sequence[TargetRead], now: datetime) -> list[dict[str, Any]]:
    """The newest entry of every source in every target it writes to, each target judged on its own."""
    by_target = {read.target: read for read in reads}
    rows = []
    for source in component.sources:
        for target in source.targets:
            read = by_target.get(target)
            row: dict[str, Any] = {
                "source": source.name,
                "kind": source.kind,
                "target": target,
                "dag_id": source.dag_id,
                "interval_s": source.interval_s,
                "backup_id": None,
                "finished_at": None,
                "age_s": None,
            }
            if read is None or read.error:
                rows.append({**row, "state": "unreadable", "error": read.error if read else "not read"})
                continue
            if source.kind == "config":
                newest_id, newest_at = read.config_version, read.config_taken_at
            else:
                entries = [m for m in read.backups if m.policy == source.name]
                newest = max(entries, key=lambda m: m.finished_at) if entries else None
                newest_id, newest_at = (newest.backup_id, newest.finished_at) if newest else (None, None)
            if newest_at is None:
                rows.append({**row, "state": "missing"})
                continue
            age = round((now - newest_at).total_seconds(), 3)
            # A config is stored after each change: an old version of an unchanged config is not late.
            late = source.interval_s is not None and age > LATE_FACTOR * source.interval_s
            rows.append(
                {
                    **row,
                    "backup_id": newest_id,
                    "finished_at": newest_at.isoformat(),
                    "age_s": age,
                    "state": "late" if late else "ok",
                }
            )
    return rows


def rpo_compliance(run: MetricsRun, reads: Sequence[TargetRead], now: datetime) -> dict[str, Any] | None:
    """The newest RPO-compliance report of the component (any target), and whether it is too old to trust."""
    reports = [r.rpo_report for r in reads if r.rpo_report and r.rpo_report.get("checked_at")]
    if not reports:
        return None
    newest = max(reports, key=lambda r: str(r["checked_at"]))
    checked = datetime.fromisoformat(str(newest["checked_at"]))
    age = (now - checked).total_seconds()
    interval = run.rpo_report_interval_s
    return {
        "checked_at": checked.isoformat(),
        "age_s": round(age, 3),
        "stale": interval is not None and age > 2 * interval,
        "compliant": bool(newest.get("compliant")),
        "achievable_rpo_s": newest.get("achievable_rpo_s"),
        "best_source": newest.get("best_source"),
        "problems": list(newest.get("problems") or []),
        "dag_id": run.rpo_report_dag_id,
    }


def component_metrics(
    run: MetricsRun,
    component: MetricsComponent,
    reads: Sequence[TargetRead],
    evidence: Sequence[Evidence],
    now: datetime,
) -> dict[str, Any]:
    period = timedelta(seconds=run.period_s)
    since = now - period
    in_period = [e for e in evidence if e.at >= since]
    proofs = [e for e in evidence if e.kind in (DRILL, EXERCISE)]
    recoveries = [e for e in evidence if e.kind == RECOVERY]
    schedules = [s for s in run.exercises if s.covers(component.name)]
    result: dict[str, Any] = {
        "component": component.name,
        "title": component.title,
        "criticality": component.criticality,
        "objectives": {"rto_s": component.rto_s, "rpo_s": component.rpo_s},
        "actual": actual(component, evidence),
        "last_proof": proofs[-1].to_json() if proofs else None,
        "last_recovery": recoveries[-1].to_json() if recoveries else None,
        **rates(in_period),
        "exercise_completion": completion(schedules, evidence, now, period),
        "backups": backup_ages(component, reads, now),
        "rpo_compliance": rpo_compliance(run, reads, now),
        "unreadable_targets": {r.target: r.error for r in reads if r.error},
    }
    status, reasons = judge(component, result, now)
    return {**result, "status": status, "reasons": reasons}


def metrics_snapshot(run: MetricsRun, reads: Mapping[str, Sequence[TargetRead]], now: datetime) -> dict[str, Any]:
    """The metrics of every component and of the spec at ``now``: what is stored, exported and shown."""
    evidence = attribute(reads)
    components = [
        component_metrics(run, c, reads.get(c.name, ()), evidence.get(c.name, []), now) for c in run.components
    ]
    since = now - timedelta(seconds=run.period_s)
    unique = {e.identity: e for found in evidence.values() for e in found if e.at >= since}
    order = {"red": 2, "amber": 1, "green": 0}
    return {
        "kind": "metrics",
        "format_version": FORMAT_VERSION,
        "spec": run.spec_name,
        "computed_at": now.isoformat(),
        "period_s": run.period_s,
        "status": max((c["status"] for c in components), key=order.__getitem__, default="green"),
        **rates(sorted(unique.values(), key=lambda e: e.at)),
        "exercise_completion": completion(run.exercises, list(unique.values()), now, timedelta(seconds=run.period_s)),
        "components": components,
    }
