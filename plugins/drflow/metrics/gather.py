"""Read what the metrics need from the store: every target of every component on its own, in parallel.

Per (component, target): the drill, exercise and recovery reports since the period began (and the newest of
each kind whatever its age), the catalog's backups, the newest config version and the newest RPO-compliance
report. A target that cannot be read is recorded with its error; the others are read all the same.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drflow.contracts.metrics import MetricsComponent, MetricsRun
from drflow.metrics.evidence import REPORT_KINDS, Evidence, from_report, stamp_time
from drflow.store.base import StoreError
from drflow.store.catalog import Catalog
from drflow.store.config_versions import ConfigVersion, ConfigVersions
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


def report_names(catalog: Catalog, component: str, kind: str, keys: list[str] | None = None) -> list[str]:
    """The names of a component's reports of one kind in one store, sorted (so by time, for stamped names)."""
    prefix = f"{catalog.component_prefix(component)}reports/{kind}/"
    listed = catalog.store.list_keys(prefix) if keys is None else [k for k in keys if k.startswith(prefix)]
    names = [key[len(prefix) :].removesuffix(".json") for key in listed if key.endswith(".json")]
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


def read_target(catalog: Catalog, name: str, component: MetricsComponent, since: datetime) -> TargetRead:
    """One listing of the component's prefix, then only the objects the metrics need."""
    read = TargetRead(target=name)
    try:
        keys = catalog.store.list_keys(catalog.component_prefix(component.name))
        for kind in REPORT_KINDS:
            for report in _recent(report_names(catalog, component.name, kind, keys), since):
                found = read_report(catalog, component.name, kind, report)
                evidence = from_report(kind, *found) if found else None
                if evidence is not None:
                    read.evidence.append(evidence)
        read.backups = catalog.list_backups(component.name, keys=keys)
        versions = sorted(
            k
            for k in keys
            if k.startswith(ConfigVersions(catalog.store, catalog.spec, component.name).prefix + "/versions/")
        )
        if versions and any(s.kind == "config" and name in s.targets for s in component.sources):
            newest = ConfigVersion.from_json(json.loads(catalog.store.get_bytes(versions[-1])))
            read.config_version = newest.version_id
            read.config_taken_at = datetime.fromisoformat(newest.taken_at)
        rpo_names = report_names(catalog, component.name, RPO_REPORTS, keys)
        if rpo_names:
            found = read_report(catalog, component.name, RPO_REPORTS, rpo_names[-1])
            read.rpo_report = found[1] if found else None
    except (StoreError, OSError, ValueError, KeyError) as exc:
        read.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, StoreError) else str(exc)
    return read


def gather(run: MetricsRun, since: datetime) -> dict[str, list[TargetRead]]:
    """Every component's reads, one per target in spec order; each target's store is opened once."""
    jobs = [(c, name) for c in run.components for name in c.targets]
    catalogs = {name: _catalog(run, name) for name in dict.fromkeys(name for _, name in jobs)}
    with ThreadPoolExecutor(max_workers=min(READERS, max(1, len(jobs)))) as pool:
        reads = list(pool.map(lambda job: _read_one(catalogs[job[1]], job[1], job[0], since), jobs))
    result: dict[str, list[TargetRead]] = {c.name: [] for c in run.components}
    for (component, _), read in zip(jobs, reads, strict=True):
        result[component.name].append(read)
    return result


def _catalog(run: MetricsRun, name: str) -> Catalog | str:
    """The target's catalog, or why it cannot be opened."""
    try:
        return Catalog(open_store(run.target(name)), run.spec_name)
    except KeyError:
        return f"storage target {name!r} is not in the spec"
    except StoreError as exc:
        return str(exc)


def _read_one(catalog: Catalog | str, name: str, component: MetricsComponent, since: datetime) -> TargetRead:
    if isinstance(catalog, str):
        return TargetRead(target=name, error=catalog)
    return read_target(catalog, name, component, since)
