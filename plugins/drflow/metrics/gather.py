"""Read what the metrics need from the store: every target of every component on its own, in parallel.

Per (component, target): the drill, exercise and recovery reports since the period began (and the newest of
each kind whatever its age), the catalog's backups, the newest config version and the newest RPO-compliance
report. A target that cannot be read is recorded with its error; the others are read all the same.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drflow.contracts.metrics import MetricsComponent, MetricsRun
from drflow.metrics.evidence import REPORT_KINDS, Evidence, from_report, stamp_time
from drflow.store.base import StoreError
from drflow.store.catalog import Catalog
from drflow.store.config_versions import ConfigVersions
from drflow.store.factory import open_store
from drflow.store.manifest import BackupManifest

log = logging.getLogger(__name__)
RPO_REPORTS = "rpo-compliance"
READERS = 8


@dataclass
class TargetRead:
    """What one target holds of one component."""

    target: str
    error: str | None = None
    evidence: list[Evidence] = field(default_factory=list)
    backups: list[BackupManifest] = field(default_factory=list)
    config_taken_at: datetime | None = None
    config_version: str | None = None
    rpo_report: dict[str, Any] | None = None


def report_names(catalog: Catalog, component: str, kind: str) -> list[str]:
    """The names of a component's reports of one kind in one store, sorted (so by time, for stamped names)."""
    prefix = f"{catalog.component_prefix(component)}reports/{kind}/"
    names = [key[len(prefix) :].removesuffix(".json") for key in catalog.store.list_keys(prefix)]
    return sorted(n for n in names if "/" not in n and n)


def read_report(catalog: Catalog, component: str, kind: str, name: str) -> tuple[str, dict[str, Any]] | None:
    key = catalog.report_key(component, kind, name)
    try:
        data = json.loads(catalog.store.get_bytes(key))
    except ValueError as exc:
        log.warning("unreadable report %s skipped: %s", catalog.store.url_for(key), exc)
        return None
    return (key, data) if isinstance(data, dict) else None


def _recent(names: list[str], since: datetime) -> list[str]:
    """Names stamped at or after ``since`` (unstamped names too: their content says when), and the newest."""
    kept = [n for n in names if (stamp_time(n) or since) >= since]
    if names and names[-1] not in kept:
        kept.append(names[-1])
    return kept


def read_target(run: MetricsRun, component: MetricsComponent, target: Mapping[str, Any], since: datetime) -> TargetRead:
    read = TargetRead(target=str(target["name"]))
    try:
        catalog = Catalog(open_store(target), run.spec_name)
        for kind in REPORT_KINDS:
            for name in _recent(report_names(catalog, component.name, kind), since):
                found = read_report(catalog, component.name, kind, name)
                evidence = from_report(kind, *found) if found else None
                if evidence is not None:
                    read.evidence.append(evidence)
        read.backups = catalog.list_backups(component.name)
        if any(s.kind == "config" and read.target in s.targets for s in component.sources):
            newest = ConfigVersions(catalog.store, run.spec_name, component.name).newest()
            if newest is not None:
                read.config_version = newest.version_id
                read.config_taken_at = datetime.fromisoformat(newest.taken_at)
        rpo_names = report_names(catalog, component.name, RPO_REPORTS)
        if rpo_names:
            found = read_report(catalog, component.name, RPO_REPORTS, rpo_names[-1])
            read.rpo_report = found[1] if found else None
    except (StoreError, OSError, ValueError, KeyError) as exc:
        read.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, StoreError) else str(exc)
    return read


def gather(run: MetricsRun, since: datetime) -> dict[str, list[TargetRead]]:
    """Every component's reads, one per target in spec order."""
    jobs = [(c, name) for c in run.components for name in c.targets]
    with ThreadPoolExecutor(max_workers=min(READERS, max(1, len(jobs)))) as pool:
        reads = list(pool.map(lambda job: _read_one(run, job[0], job[1], since), jobs))
    result: dict[str, list[TargetRead]] = {c.name: [] for c in run.components}
    for (component, _), read in zip(jobs, reads, strict=True):
        result[component.name].append(read)
    return result


def _read_one(run: MetricsRun, component: MetricsComponent, name: str, since: datetime) -> TargetRead:
    try:
        target = run.target(name)
    except KeyError:
        return TargetRead(target=name, error=f"storage target {name!r} is not in the spec")
    return read_target(run, component, target, since)
