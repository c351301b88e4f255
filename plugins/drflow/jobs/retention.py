"""Retention of one component across its storage targets, each on its own (no Airflow).

Every target is judged from its own catalog and expired on its own: a target that cannot be read
or written is reported and skipped, and never stops or widens the expiry of another. Pins are read
from every reachable target (a pin anywhere keeps the entry everywhere: it can only keep more).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drflow.jobs.snapshot_expiry import SnapshotDeletion, delete_entry_snapshots, is_snapshot_entry, snapshot_ids
from drflow.store.base import StoreError
from drflow.store.catalog import Catalog
from drflow.store.expiry import PolicyRules, Verdict, apply, decide, objects_present
from drflow.store.factory import target_catalogs
from drflow.store.pins import Pin, read_pins


@dataclass
class TargetExpiry:
    """What expiry did (or, in a dry run, would do) in one target."""

    target: str
    verdicts: list[Verdict] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "error": self.error,
            "delete": [_delete_row(v) for v in self.verdicts if v.delete],
            "keep": [
                {"backup_id": v.backup_id, "reason": v.reason, "locked": v.locked}
                for v in self.verdicts
                if not v.delete
            ],
            "deleted": self.deleted,
        }


def _delete_row(verdict: Verdict) -> dict[str, Any]:
    row: dict[str, Any] = {"backup_id": verdict.backup_id, "reason": verdict.reason}
    if is_snapshot_entry(verdict.manifest):
        row["snapshots"] = snapshot_ids(verdict.manifest)
    return row


@dataclass
class ComponentExpiry:
    component: str
    dry_run: bool
    targets: list[TargetExpiry]
    snapshots: list[SnapshotDeletion] = field(default_factory=list)
    """The AWS snapshots of doomed snapshot entries, deleted (or not) per region."""

    @property
    def problems(self) -> list[str]:
        return [f"{t.target}: {t.error}" for t in self.targets if t.error] + [
            f"snapshots of {s.backup_id} in {region}: {error}"
            for s in self.snapshots
            for region, error in s.errors.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "dry_run": self.dry_run,
            "targets": [t.to_dict() for t in self.targets],
            "snapshots": [s.to_dict() for s in self.snapshots],
        }


def expire_component(
    spec_name: str,
    component: str,
    targets: Sequence[Mapping[str, Any]],
    rules: Mapping[str, PolicyRules],
    now: datetime,
    *,
    dry_run: bool,
    pgbackrest_labels: Mapping[str, Collection[str]] | None = None,
    snapshot_conn_id: str | None = None,
) -> ComponentExpiry:
    """Judge (and unless ``dry_run`` expire) the component's entries in every target.

    ``pgbackrest_labels``: by target, the labels pgBackRest still lists after its expire; a target
    missing from it (or None) keeps every pgBackRest record. ``snapshot_conn_id``: the AWS connection
    of the component's snapshot source, which deletes the AWS snapshots of expired snapshot entries
    (:mod:`drflow.jobs.snapshot_expiry`) before their records go.
    """
    catalogs = target_catalogs(spec_name, targets)
    pins: dict[str, Pin] = {}
    unreadable: dict[str, str] = {}
    for name, catalog in catalogs:
        try:
            pins.update(read_pins(catalog, component))
        except StoreError as exc:
            unreadable[name] = str(exc)
    results: list[tuple[TargetExpiry, Catalog]] = []
    for name, catalog in catalogs:
        result = TargetExpiry(name, error=unreadable.get(name))
        results.append((result, catalog))
        if result.error:
            continue
        try:
            manifests = catalog.list_backups(component)
            result.verdicts = decide(
                manifests, rules, pins, now, objects_present(catalog), (pgbackrest_labels or {}).get(name)
            )
        except StoreError as exc:
            result.error = f"{exc}; the other targets were expired on their own, rerun when it is fixed"
    judged = [r for r, _ in results if r.error is None]
    expiry = ComponentExpiry(component, dry_run, [r for r, _ in results])
    expiry.snapshots = _expire_snapshots(judged, snapshot_conn_id, dry_run)
    if dry_run:
        return expiry
    for result, catalog in results:
        if result.error is not None:
            continue
        try:
            for row in apply(catalog, result.verdicts):
                result.deleted.append(row)
        except StoreError as exc:
            result.error = f"{exc}; the other targets were expired on their own, rerun when it is fixed"
    return expiry


def _expire_snapshots(judged: Sequence[TargetExpiry], conn_id: str | None, dry_run: bool) -> list[SnapshotDeletion]:
    """Delete the AWS snapshots of snapshot entries every judged target dooms; turn the verdicts of entries
    whose snapshots stay (kept elsewhere, or a region failed) into keeps that say why."""
    keepers: dict[str, list[str]] = {}
    doomed: dict[str, Verdict] = {}
    for result in judged:
        for v in result.verdicts:
            if not is_snapshot_entry(v.manifest):
                continue
            if v.delete:
                doomed.setdefault(v.backup_id, v)
            else:
                keepers.setdefault(v.backup_id, []).append(result.target)
    stays: dict[str, str] = {}
    deletions = []
    for backup_id, verdict in doomed.items():
        if backup_id in keepers:
            stays[backup_id] = (
                f"kept in {', '.join(keepers[backup_id])}, which shares its AWS snapshots "
                f"({verdict.reason} here): the record stays until every target lets it go"
            )
            continue
        if dry_run:
            continue
        deletion = delete_entry_snapshots(verdict.manifest, conn_id)
        deletions.append(deletion)
        if not deletion.complete:
            failed = "; ".join(f"{region}: {error}" for region, error in deletion.errors.items())
            stays[backup_id] = (
                f"{verdict.reason}, but its AWS snapshots could not all be deleted ({failed}); the record stays "
                "until they are gone: fix this and run expire again"
            )
    for result in judged:
        result.verdicts = [
            Verdict(v.manifest, False, stays[v.backup_id]) if v.delete and v.backup_id in stays else v
            for v in result.verdicts
        ]
    return deletions


def component_rules(policies: Sequence[Any]) -> dict[str, PolicyRules]:
    """``{policy name: PolicyRules}`` of a component's backup policies (spec ``BackupPolicy`` objects)."""
    return {p.name: PolicyRules(days=p.retention.days, min_copies=p.retention.min_copies) for p in policies}


def component_target_names(policies: Sequence[Any]) -> list[str]:
    """The storage targets a component's policies write to, in spec order."""
    return list(dict.fromkeys(t for p in policies for t in p.targets))
