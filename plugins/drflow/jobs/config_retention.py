"""Retention of a component's configuration versions, every storage target on its own (no Airflow).

Each target is judged from its own versions and pruned on its own: one that cannot be read or
written is reported and never stops or widens the pruning of another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drflow.jobs.config import component_versions
from drflow.store.base import StoreError
from drflow.store.config_expiry import VersionVerdict, decide_versions, freed_blobs, prune


@dataclass
class ConfigTargetExpiry:
    """What config retention did (or, in a dry run, would do) in one target."""

    target: str
    verdicts: list[VersionVerdict] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    """Blobs deleted (or, in a dry run, that would be)."""
    deleted: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "error": self.error,
            "delete": [{"version_id": v.version_id, "reason": v.reason} for v in self.verdicts if v.delete],
            "keep": [{"version_id": v.version_id, "reason": v.reason} for v in self.verdicts if not v.delete],
            "blobs": self.blobs,
            "deleted": self.deleted,
        }


@dataclass
class ConfigExpiry:
    component: str
    dry_run: bool
    targets: list[ConfigTargetExpiry]

    @property
    def problems(self) -> list[str]:
        return [f"config in {t.target}: {t.error}" for t in self.targets if t.error]

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "dry_run": self.dry_run, "targets": [t.to_dict() for t in self.targets]}


def expire_config(
    spec_name: str,
    component: str,
    targets: Sequence[Mapping[str, Any]],
    days: int,
    min_copies: int,
    now: datetime,
    *,
    dry_run: bool,
) -> ConfigExpiry:
    """Judge (and unless ``dry_run`` prune) the component's config versions in every target."""
    results = []
    for target in targets:
        result = ConfigTargetExpiry(str(target["name"]))
        results.append(result)
        try:
            versions = component_versions(spec_name, component, target)
            result.verdicts = decide_versions(versions.versions(), days, min_copies, now)
            if dry_run:
                doomed = [v.version for v in result.verdicts if v.delete]
                result.blobs = freed_blobs(doomed, [v.version for v in result.verdicts if not v.delete])
            else:
                result.deleted, result.blobs = prune(versions, result.verdicts)
        except (StoreError, ValueError) as exc:
            result.error = f"{exc}; the other targets were pruned on their own, rerun when it is fixed"
    return ConfigExpiry(component, dry_run, results)
