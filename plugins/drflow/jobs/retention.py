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

from drflow.store.base import StoreError
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
            "delete": [{"backup_id": v.backup_id, "reason": v.reason} for v in self.verdicts if v.delete],
            "keep": [
                {"backup_id": v.backup_id, "reason": v.reason, "locked": v.locked}
                for v in self.verdicts
                if not v.delete
            ],
            "deleted": self.deleted,
        }


@dataclass
class ComponentExpiry:
    component: str
    dry_run: bool
    targets: list[TargetExpiry]

    @property
    def problems(self) -> list[str]:
        return [f"{t.target}: {t.error}" for t in self.targets if t.error]

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "dry_run": self.dry_run, "targets": [t.to_dict() for t in self.targets]}


def expire_component(
    spec_name: str,
    component: str,
    targets: Sequence[Mapping[str, Any]],
    rules: Mapping[str, PolicyRules],
    now: datetime,
    *,
    dry_run: bool,
    pgbackrest_labels: Mapping[str, Collection[str]] | None = None,
) -> ComponentExpiry:
    """Judge (and unless ``dry_run`` expire) the component's entries in every target.

    ``pgbackrest_labels``: by target, the labels pgBackRest still lists after its expire; a target
    missing from it (or None) keeps every pgBackRest record.
    """
    catalogs = target_catalogs(spec_name, targets)
    pins: dict[str, Pin] = {}
    unreadable: dict[str, str] = {}
    for name, catalog in catalogs:
        try:
            pins.update(read_pins(catalog, component))
        except StoreError as exc:
            unreadable[name] = str(exc)
    results = []
    for name, catalog in catalogs:
        result = TargetExpiry(name, error=unreadable.get(name))
        results.append(result)
        if result.error:
            continue
        try:
            manifests = catalog.list_backups(component)
            result.verdicts = decide(
                manifests, rules, pins, now, objects_present(catalog), (pgbackrest_labels or {}).get(name)
            )
            if not dry_run:
                for row in apply(catalog, result.verdicts):
                    result.deleted.append(row)
        except StoreError as exc:
            result.error = f"{exc}; the other targets were expired on their own, rerun when it is fixed"
    return ComponentExpiry(component, dry_run, results)


def component_rules(policies: Sequence[Any]) -> dict[str, PolicyRules]:
    """``{policy name: PolicyRules}`` of a component's backup policies (spec ``BackupPolicy`` objects)."""
    return {p.name: PolicyRules(days=p.retention.days, min_copies=p.retention.min_copies) for p in policies}


def component_target_names(policies: Sequence[Any]) -> list[str]:
    """The storage targets a component's policies write to, in spec order."""
    return list(dict.fromkeys(t for p in policies for t in p.targets))
