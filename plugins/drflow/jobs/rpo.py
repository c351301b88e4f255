"""RPO compliance: the recovery point each component could reach right now, against its objective.

Three sources can bound the data a disaster would lose: a streaming replica (its replay lag), the WAL
archive (how far back the newest archived WAL is) and the newest base backup (its age). The
achievable RPO is the best of them. A replica alone does not protect against a deletion or
corruption, which it replicates too, so the report says when only a replica keeps a component
compliant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from drflow.contracts.rpo import RpoComponent
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.replication import measure_replication
from drflow.engines.postgres.replication_report import ReplicaTarget
from drflow.jobs.files_chain import files_sources
from drflow.jobs.rpo_config import config_exposure
from drflow.store.base import StoreError
from drflow.store.factory import target_catalogs
from drflow.store.wal import is_base_backup, status_from
from drflow.units import human_duration


def replica_sources(component: RpoComponent) -> tuple[list[dict[str, Any]], list[str]]:
    """Replay lag of every healthy streaming replica, and the problems seen."""
    if not component.replicas:
        return [], []
    assert component.primary_conn_id is not None, "RpoComponent refuses replicas without a primary"
    report = measure_replication(
        PgConnInfo.from_airflow_conn(component.primary_conn_id),
        [ReplicaTarget(r.name, PgConnInfo.from_airflow_conn(r.conn_id), r.slot) for r in component.replicas],
        warn_lag_s=component.rpo_s,
        max_lag_s=component.rpo_s,
        max_slot_retained_bytes=component.max_slot_retained_bytes,
    )
    sources = [
        {"source": f"replica:{status.name}", "lag_s": round(status.lag_seconds, 3)}
        for status in report.replicas
        if status.state == "streaming" and status.lag_seconds is not None
    ]
    return sources, [alert.message for alert in report.critical]


def store_sources(spec_name: str, component: RpoComponent, now: datetime) -> tuple[list[dict[str, Any]], list[str]]:
    """Age of the newest base backup and of the newest archived WAL, per storage target."""
    sources: list[dict[str, Any]] = []
    problems: list[str] = []
    for name, catalog in target_catalogs(spec_name, component.targets):
        try:
            manifests = catalog.list_backups(component.name)
        except StoreError as exc:
            problems.append(f"{name}: {exc}")
            continue
        # A snapshot (EBS volumes, an RDS instance) is a recovery point of its own.
        bases = [m for m in manifests if is_base_backup(m) or m.backup_type == "snapshot"]
        if bases:
            newest = max(bases, key=lambda m: m.finished_at)
            sources.append(
                {
                    "source": f"backup:{name}",
                    "lag_s": round((now - newest.finished_at).total_seconds(), 3),
                    "backup_id": newest.backup_id,
                }
            )
        sources.extend(files_sources(name, manifests, now, problems))
        if component.wal_interval_s:
            archive = status_from(manifests, component.name, now, component.wal_interval_s, component.rpo_s)
            if archive["archive_lag_s"] is not None and not any(
                a["code"] == "wal_chain_broken" for a in archive["alerts"]
            ):
                sources.append({"source": f"wal:{name}", "lag_s": archive["archive_lag_s"]})
            problems.extend(f"{name}: {a['message']}" for a in archive["alerts"])
    return sources, problems


def stale_copies(component: RpoComponent, stored: Sequence[Mapping[str, Any]]) -> list[str]:
    """A copy target (secondary region, offline) whose newest backup is older than the RPO, or that has none."""
    problems = []
    ages = {s["source"].removeprefix("backup:"): s["lag_s"] for s in stored if s["source"].startswith("backup:")}
    for name in component.copy_targets:
        age = ages.get(name)
        if age is None:
            problems.append(f"copy target {name} holds no backup yet: check the backup DAG's copy_backup task")
        elif age > component.rpo_s:
            problems.append(
                f"copy target {name} lags: its newest backup is {human_duration(age)} old, older than the RPO "
                f"({human_duration(component.rpo_s)}); check the backup DAG's copy_backup task and the target"
            )
    return problems


def copies_by_region(component: RpoComponent, stored: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Region → the storage targets holding a recovery point of the component now (data sovereignty at a glance)."""
    held = {s["source"].split(":", 1)[1] for s in stored if not s["source"].startswith("replica:")}
    regions: dict[str, list[str]] = {}
    targets = {str(t["name"]): t for t in [*component.targets, *component.config_targets]}
    for name, target in targets.items():
        if name in held:
            regions.setdefault(str(target.get("region") or "(no region)"), []).append(name)
    return regions


def config_compliance(
    spec_name: str, component: RpoComponent, now: datetime
) -> tuple[list[dict[str, Any]], float | None, list[str]] | None:
    """The config's sources, exposure and problems (see `jobs/rpo_config.py`); None without a `config:`."""
    if component.config_source is None:
        return None
    return config_exposure(spec_name, component.name, component.config_source, component.config_targets, now)


def component_compliance(spec_name: str, component: RpoComponent, now: datetime) -> dict[str, Any]:
    replica, replica_problems = replica_sources(component)
    stored, store_problems = store_sources(spec_name, component, now)
    store_problems += stale_copies(component, stored)
    sources = replica + stored
    best = min(sources, key=lambda s: s["lag_s"]) if sources else None
    best_stored = min(stored, key=lambda s: s["lag_s"]) if stored else None
    rpo_s = component.rpo_s
    compliant = best is not None and best["lag_s"] <= rpo_s
    # The config is data of its own (no backup of the database holds it): the component complies only when
    # its data and its config both do, so the achievable RPO is the worse of the two.
    config = config_compliance(spec_name, component, now)
    if config is not None:
        config_sources, exposure, config_problems = config
        store_problems += config_problems
        sources += config_sources
        if exposure is None:
            compliant = False
        elif best is None and not component.targets:
            best = {"source": "config", "lag_s": exposure}  # a component whose only data is its config
            compliant = exposure <= rpo_s
        elif best is not None and exposure > best["lag_s"]:
            best = {"source": "config", "lag_s": exposure}
            compliant = exposure <= rpo_s
    notes = []
    if compliant and best is not None and best["source"].startswith("replica:"):
        if best_stored is None:
            notes.append(
                f"only {best['source']} keeps the RPO: a deletion or corruption would be replicated, and there is "
                "no stored recovery point (backup or archived WAL) at all"
            )
        elif best_stored["lag_s"] > rpo_s:
            notes.append(
                f"only {best['source']} keeps the RPO: a deletion or corruption would be replicated; the newest "
                f"stored recovery point is {human_duration(best_stored['lag_s'])} old"
            )
    if best is None:
        notes.append("no source of recovery points: no reachable replica, no backup, no archived WAL")
    if config is not None and config[1] is None:
        notes.append("config: no version stored in any target, so the component cannot comply whatever its data")
    if config is not None and config[1] is not None:
        unsaved = config[1]
        notes.append(
            f"config: {human_duration(unsaved)} of changes not backed up" if unsaved else "config: backed up as it is"
        )
    return {
        "component": component.name,
        "copies_by_region": copies_by_region(component, sources),
        "allowed_regions": list(component.allowed_regions) if component.allowed_regions is not None else None,
        "rpo_s": rpo_s,
        "achievable_rpo_s": best["lag_s"] if best else None,
        "best_source": best["source"] if best else None,
        "achievable_from_store_s": best_stored["lag_s"] if best_stored else None,
        "compliant": compliant,
        "sources": sources,
        "problems": replica_problems + store_problems,
        "notes": notes,
    }


def rpo_compliance(spec_name: str, components: Sequence[RpoComponent], now: datetime) -> dict[str, Any]:
    results = [component_compliance(spec_name, component, now) for component in components]
    return {
        "spec": spec_name,
        "checked_at": now.isoformat(),
        "compliant": all(r["compliant"] for r in results),
        "components": results,
    }
