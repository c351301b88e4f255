"""Compliance evidence for one spec and period, read from the store alone: what an auditor asks for.

Per component: the backups each policy's schedule asked for against those its catalogs hold, the retention,
lock and encryption every copy carries (its manifest in each target, each target on its own), where copies
live against ``allowed_regions``, config versions, drills and exercises done against their schedules with
their results, and incidents (the recovery records of plan runs) with their measured RTO and RPO. Then the
spec's documentation currency. Nothing is measured live: the store, whose records Airflow's runs wrote,
is enough to produce the same report again (a target that cannot be read is named as a problem).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from drflow.jobs.compliance_period import Period, coverage
from drflow.jobs.compliance_runs import drill_evidence, exercise_evidence, incident_evidence
from drflow.spec.check_currency import reviews
from drflow.spec.exercises import ExerciseSchedule
from drflow.spec.model import BackupPolicy, Component, Spec
from drflow.store.base import StoreError
from drflow.store.factory import target_catalogs
from drflow.store.manifest import BackupManifest

FORMAT_VERSION = 1
REPORT_KINDS = ("drill", "exercise", "recovery")


@dataclass
class _Evidence:
    """What every target of a component holds, read once."""

    manifests: dict[str, list[BackupManifest]]
    reports: dict[str, dict[str, dict[str, Any]]]
    """kind → report name → report, over every readable target."""
    config_versions: dict[str, list[str]]
    """target → the taken_at times of its config versions."""
    problems: list[str]
    unreadable: list[str] = field(default_factory=list)
    """The targets that could not be read."""


def compliance_report(
    spec: Spec, period: Period, now: datetime, exercises: Sequence[ExerciseSchedule] = ()
) -> dict[str, Any]:
    components = [component_compliance(spec, c, period, now, exercises) for c in spec.components]
    today = now.date()
    currency = [review.to_json() for review in reviews(spec, today)]
    return {
        "kind": "compliance-report",
        "format_version": FORMAT_VERSION,
        "spec": spec.metadata.name,
        "owner": spec.metadata.owner,
        "period": period.to_json(),
        "generated_at": now.isoformat(),
        "components": components,
        "currency": {
            "documents": currency,
            "stale": sum(1 for r in currency if r["state"] == "stale"),
            "never_reviewed": sum(1 for r in currency if r["state"] == "never reviewed"),
        },
        "summary": _summary(components),
    }


def component_compliance(
    spec: Spec, component: Component, period: Period, now: datetime, exercises: Sequence[ExerciseSchedule] = ()
) -> dict[str, Any]:
    evidence = _read(spec, component)
    policies = component.backup_policies
    backups = [_policy(policy, evidence.manifests, period, now) for policy in policies]
    copies = [
        _copy(spec, name, policy_roles(policies, name), found, period) for name, found in evidence.manifests.items()
    ]
    regions = _regions(spec, component, evidence)
    return {
        "component": component.name,
        "title": component.title,
        "criticality": component.criticality,
        "rto_s": int(component.rto.total_seconds()),
        "rpo_s": int(component.rpo.total_seconds()),
        "replication_mode": component.replication_mode,
        "allowed_regions": component.allowed_regions,
        "backups": backups,
        "copies": copies,
        "regions": regions,
        "config": _config(spec, component, evidence, period),
        "drills": drill_evidence(component, evidence.reports.get("drill", {}), period, now),
        "exercises": exercise_evidence(
            [e for e in exercises if component.name in e.components], evidence.reports, period, now
        ),
        "incidents": incident_evidence(component.name, evidence.reports.get("recovery", {}), period),
        "problems": evidence.problems,
        "unreadable_targets": evidence.unreadable,
    }


def policy_roles(policies: Iterable[BackupPolicy], target: str) -> list[str]:
    """How a target serves the policies: ``<policy>`` where it is written, ``<policy> (copy)`` where copied to."""
    roles = []
    for policy in policies:
        if target in policy.targets:
            roles.append(policy.name)
        if target in policy.copy_to:
            roles.append(f"{policy.name} (copy)")
    return roles


def _targets(component: Component) -> list[str]:
    names = [t for p in component.backup_policies for t in [*p.targets, *p.copy_to]]
    names += component.config.targets if component.config else []
    return list(dict.fromkeys(names))


def _read(spec: Spec, component: Component) -> _Evidence:
    evidence = _Evidence({}, {kind: {} for kind in REPORT_KINDS}, {}, [])
    backup_targets = {t for p in component.backup_policies for t in [*p.targets, *p.copy_to]}
    config_targets = set(component.config.targets) if component.config else set()
    names = _targets(component)
    targets = [spec.target(name).model_dump(mode="json") for name in names]
    for (name, catalog), target in zip(target_catalogs(spec.metadata.name, targets), targets, strict=True):
        try:
            if name in backup_targets:
                evidence.manifests[name] = catalog.list_backups(component.name)
            for kind in REPORT_KINDS:
                for report_name, report in catalog.read_named_reports(component.name, kind):
                    evidence.reports[kind].setdefault(report_name, report)
            if name in config_targets:
                evidence.config_versions[name] = _config_times(spec, component, target)
        except StoreError as exc:
            evidence.manifests.pop(name, None)
            evidence.unreadable.append(name)
            evidence.problems.append(f"storage target {name} could not be read, so its copies are not counted: {exc}")
    return evidence


def _config_times(spec: Spec, component: Component, target: Mapping[str, Any]) -> list[str]:
    from drflow.jobs.config import component_versions

    return [v.taken_at for v in component_versions(spec.metadata.name, component.name, target).versions()]


def _policy(
    policy: BackupPolicy, manifests: Mapping[str, list[BackupManifest]], period: Period, now: datetime
) -> dict[str, Any]:
    started: dict[str, datetime] = {}
    held: dict[str, list[str]] = {}
    for target, entries in manifests.items():
        for manifest in entries:
            if manifest.policy == policy.name:
                started.setdefault(manifest.backup_id, manifest.started_at)
                held.setdefault(manifest.backup_id, []).append(target)
    in_period = sorted(i for i, at in started.items() if at in period)
    wanted = [*policy.targets, *policy.copy_to]
    incomplete = [i for i in in_period if set(wanted) - set(held[i]) and set(wanted) <= set(manifests)]
    since = now - timedelta(days=policy.retention.days)
    runs = coverage(policy.schedule, period, list(started.values()), now, evidence_since=since)
    return {
        "policy": policy.name,
        "method": policy.method,
        "type": policy.type,
        "schedule": policy.schedule,
        "targets": policy.targets,
        "copy_to": policy.copy_to,
        "retention": {"days": policy.retention.days, "policy": policy.retention.policy},
        "taken": len(in_period),
        "runs": runs.to_json(),
        "not_in_every_target": incomplete[:20],
        "newest": max(started, key=lambda i: started[i]) if started else None,
    }


def _copy(spec: Spec, name: str, roles: list[str], manifests: list[BackupManifest], period: Period) -> dict[str, Any]:
    target = spec.target(name)
    locks: dict[str, dict[str, Any]] = {}
    encryption: dict[str, int] = {}
    retention: dict[str, int] = {}
    snapshot_regions: dict[str, int] = {}
    for manifest in manifests:
        key = f"{manifest.retention_policy} {manifest.retention_days}d"
        retention[key] = retention.get(key, 0) + 1
        lock = manifest.object_lock
        mode = lock.mode if lock else "none"
        entry = locks.setdefault(mode, {"backups": 0, "retain_until": []})
        entry["backups"] += 1
        if lock:
            entry["retain_until"] = _span(entry["retain_until"], lock.retain_until.isoformat())
        described = ", ".join(_encryption(r.layer, r.algorithm, r.key_id) for r in manifest.encryption) or "none"
        encryption[described] = encryption.get(described, 0) + 1
        for region in {r for s in manifest.extra.get("snapshots") or [] for r in s.get("regions") or {}}:
            snapshot_regions[region] = snapshot_regions.get(region, 0) + 1
    return {
        "target": name,
        "type": target.type,
        "region": target.region,
        "roles": roles,
        "backups": len(manifests),
        "in_period": sum(1 for m in manifests if m.started_at in period),
        "newest": manifests[-1].backup_id if manifests else None,
        "stored_bytes": sum(m.stored_bytes for m in manifests),
        "retention": retention,
        "locks": locks,
        "encryption": encryption,
        "snapshot_regions": snapshot_regions,
    }


def _encryption(layer: str, algorithm: str, key_id: str | None) -> str:
    return f"{layer} {algorithm}" + (f" (key {key_id})" if key_id else "")


def _span(span: list[str], value: str) -> list[str]:
    """[earliest, latest] of ISO times (UTC, so they sort as text)."""
    return [min([*span[:1], value]), max([*span[1:], value])]


def _regions(spec: Spec, component: Component, evidence: _Evidence) -> dict[str, dict[str, Any]]:
    """Region → what of the component lives there: backup copies, snapshot copies, config versions, servers."""
    regions: dict[str, dict[str, Any]] = {}

    def at(region: str | None) -> dict[str, Any]:
        entry = regions.setdefault(
            region or "(no region)", {"targets": [], "backups": 0, "snapshots": 0, "config_versions": 0, "nodes": []}
        )
        return entry

    backup_ids: dict[str, set[str]] = {}
    snapshot_ids: dict[str, set[str]] = {}
    for name, manifests in evidence.manifests.items():
        region = spec.target(name).region or "(no region)"
        at(region)["targets"].append(name)
        backup_ids.setdefault(region, set()).update(m.backup_id for m in manifests)
        for manifest in manifests:  # one AWS snapshot copy per region, whichever catalogs record it
            for copied in {r for s in manifest.extra.get("snapshots") or [] for r in s.get("regions") or {}}:
                snapshot_ids.setdefault(copied, set()).add(manifest.backup_id)
    for region, ids in backup_ids.items():
        at(region)["backups"] = len(ids)
    for region, ids in snapshot_ids.items():
        at(region)["snapshots"] = len(ids)
    for name, times in evidence.config_versions.items():
        entry = at(spec.target(name).region)
        entry["config_versions"] += len(times)
        if name not in entry["targets"]:
            entry["targets"].append(name)
    if component.postgres:
        at(component.postgres.primary.region)["nodes"].append("primary")
        for replica in component.postgres.replicas:
            at(replica.region)["nodes"].append(replica.name)
    allowed = component.allowed_regions
    for region, entry in regions.items():
        entry["allowed"] = allowed is None or region in allowed
    return dict(sorted(regions.items()))


def _config(spec: Spec, component: Component, evidence: _Evidence, period: Period) -> dict[str, Any] | None:
    if component.config is None:
        return None
    targets = {}
    for name, times in evidence.config_versions.items():
        taken = [datetime.fromisoformat(t) for t in times]
        targets[name] = {
            "region": spec.target(name).region,
            "versions": len(taken),
            "in_period": sum(1 for t in taken if t in period),
            "newest": max(times) if times else None,
        }
    return {"retention_days": component.config.retention.days, "targets": targets}


def _summary(components: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    def runs(section: str, key: str) -> int:
        return sum(int(item["runs"][key]) for c in components for item in c[section] if item.get("runs"))

    return {
        "backups_scheduled": runs("backups", "scheduled"),
        "backups_done": runs("backups", "done"),
        "backups_missed": runs("backups", "missed"),
        "drills_scheduled": runs("drills", "scheduled"),
        "drills_done": runs("drills", "done"),
        "drills_missed": runs("drills", "missed"),
        "drills_failed": sum(int(d["failed"]) for c in components for d in c["drills"]),
        "exercises_scheduled": runs("exercises", "scheduled"),
        "exercises_done": runs("exercises", "done"),
        "exercises_missed": runs("exercises", "missed"),
        # A plan run over several components is listed under each of them: count it once.
        "incidents": len({(i["plan"], i["run_id"] or i["started_at"]) for c in components for i in c["incidents"]}),
        "copies_outside_allowed_regions": sorted(
            f"{c['component']}: {region}" for c in components for region, e in c["regions"].items() if not e["allowed"]
        ),
        "problems": sum(len(c["problems"]) for c in components),
        # A target down is read (and counted) once per component that uses it: name each once.
        "unreadable_targets": sorted({name for c in components for name in c["unreadable_targets"]}),
    }
