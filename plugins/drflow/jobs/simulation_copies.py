"""The isolated copies a simulation works on: the newest backups restored into scratch instances, and standbys.

Every copy is a PostgreSQL server of its own on a free loopback port, started as the db user under the
simulation's scratch directory, with no link to production (``primary_conninfo`` cleared, archiving off,
WAL from the store only). A copy of a replica is a standby streaming from the copy of the primary. The
production nodes are only read (health and role, ``now()`` and the WAL position), never changed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drflow.engines.postgres.cluster import LocalCluster, create_replica, free_port
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.lsn import format_lsn, parse_lsn
from drflow.engines.postgres.node import Node, node_health
from drflow.hosts import Host
from drflow.jobs.pitr import plan_in_targets, restore_to_point_from_any
from drflow.jobs.restore import find_copies, restore_intact_copy, start_scratch_instance
from drflow.store.base import StoreError
from drflow.store.catalog import Catalog
from drflow.store.factory import target_catalogs
from drflow.store.manifest import BackupManifest
from drflow.store.wal import RecoveryPoint, ranges_from
from drflow.units import human_duration

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestoredPoint:
    """Where a copy's data ends: its last transaction (time and WAL position) and how it was restored."""

    time: datetime
    lsn: str | None
    how: str
    manifest: BackupManifest | None = None
    """The backup restored as it was (no WAL replayed after it): what a validation suite compares with."""


@dataclass(frozen=True)
class SourceNow:
    """The production primary's clock and WAL position when the simulation began: what a copy's point is
    measured against."""

    time: datetime
    lsn: str | None
    note: str


@dataclass
class Copies:
    """Every scratch server of one simulation, by component and node name; :meth:`remove` stops them all."""

    root: Path
    spec_name: str
    host: Host
    work_dir: str | None = None
    nodes: dict[tuple[str, str], Node] = field(default_factory=dict)
    clusters: list[LocalCluster] = field(default_factory=list)

    def node(self, component: str, name: str) -> Node:
        try:
            return self.nodes[(component, name)]
        except KeyError:
            known = ", ".join(n for c, n in self.nodes if c == component) or "none"
            raise LookupError(
                f"the simulation has no copy of node {name!r} of {component!r} (copies: {known}); an earlier step "
                "that makes it failed, or the step names a node the component does not have"
            ) from None

    def restore_newest(
        self,
        component: str,
        name: str,
        targets: Sequence[Mapping[str, Any]],
        *,
        database: str,
        bin_dir: Path,
        with_wal: bool = True,
    ) -> tuple[Node, RestoredPoint]:
        """Restore the newest point the store reaches into a new scratch server called ``name``."""
        parent = self.host.make_private_dir(self.root / f"{component}-{_safe(name)}")
        data_dir = parent / "data"
        catalogs = target_catalogs(self.spec_name, list(targets))
        cluster, point = restore_newest(
            catalogs, component, data_dir, host=self.host, bin_dir=bin_dir, work_dir=self.work_dir, with_wal=with_wal
        )
        self.clusters.append(cluster)
        return self._add(component, name, cluster, database), point

    def add_standby(self, component: str, name: str, of: Node, *, database: str) -> Node:
        """A standby of the copy ``of`` (pg_basebackup from it, streaming through a slot on it)."""
        source = next(c for c in self.clusters if c.port == of.conn.port)
        parent = self.host.make_private_dir(self.root / f"{component}-{_safe(name)}")
        slot = "drflow_simulation_" + re.sub(r"[^a-z0-9_]", "_", name.lower())
        cluster = create_replica(source, parent / "data", free_port(), slot[:63], socket_dir=parent / "socket")
        self.clusters.append(cluster)
        return self._add(component, name, cluster, database)

    def _add(self, component: str, name: str, cluster: LocalCluster, database: str) -> Node:
        node = Node(
            name=f"{name} (copy)",
            conn=cluster.conninfo(database),
            data_dir=cluster.data_dir,
            host=self.host,
            bin_dir=cluster.bin_dir,
        )
        self.nodes[(component, name)] = node
        return node

    def remove(self) -> list[str]:
        """Stop every scratch server (standbys first); return what could not be stopped. The caller's
        scratch directory removes the files."""
        problems = []
        for cluster in reversed(self.clusters):
            try:
                cluster.stop("immediate")
            except Exception as exc:  # one server that will not stop must not keep the others running
                problems.append(f"the copy in {cluster.data_dir} (port {cluster.port}) did not stop: {exc}")
        return problems


def restore_newest(
    catalogs: Sequence[tuple[str, Catalog]],
    component: str,
    data_dir: Path,
    *,
    host: Host,
    bin_dir: Path,
    work_dir: str | None = None,
    with_wal: bool = True,
) -> tuple[LocalCluster, RestoredPoint]:
    """The newest point any target reaches (newest full backup plus every archived WAL entry after it,
    replayed and promoted; without WAL, the newest full backup) restored into ``data_dir`` and started."""
    choice = find_copies(catalogs, component)
    newest_full = choice.copies[0].manifest
    end = newest_wal_point(catalogs, component) if with_wal else None
    socket_dir = data_dir.parent / "socket"
    if end is not None and end.time > newest_full.finished_at:
        plans = plan_in_targets(catalogs, component, target_lsn=format_lsn(end.lsn))
        result, used = restore_to_point_from_any(
            plans, data_dir, host=host, bin_dir=bin_dir, work_dir=work_dir, socket_dir=socket_dir
        )
        assert result.port is not None, "restore_to_point keeps the server running"
        cluster = LocalCluster(data_dir=data_dir, port=result.port, socket_dir=socket_dir, bin_dir=bin_dir, host=host)
        when = datetime.fromisoformat(result.last_replayed_commit) if result.last_replayed_commit else end.time
        how = (
            f"backup {used.plan.base.backup_id} + {len(used.plan.wal)} WAL entries from {used.target}, "
            f"replayed to {result.replayed_lsn}"
        )
        return cluster, RestoredPoint(when, result.replayed_lsn, how)
    _, copy = restore_intact_copy(choice, data_dir, host=host, bin_dir=bin_dir, work_dir=work_dir, sync=True)
    cluster = start_scratch_instance(data_dir, host=host, bin_dir=bin_dir)
    manifest = copy.manifest
    how = f"backup {manifest.backup_id} from {copy.target}" + ("" if with_wal else " (WAL not replayed)")
    return cluster, RestoredPoint(manifest.finished_at, manifest.end_lsn, how, manifest)


def newest_wal_point(catalogs: Sequence[tuple[str, Catalog]], component: str) -> RecoveryPoint | None:
    """The newest point archived WAL reaches from a full backup, over every readable target."""
    best: RecoveryPoint | None = None
    for name, catalog in catalogs:
        try:
            ranges = ranges_from(catalog.list_backups(component))
        except (StoreError, OSError) as exc:
            log.warning("storage target %s cannot be read, its WAL is not used: %s", name, exc)
            continue
        if ranges and (best is None or ranges[-1].end.time > best.time):
            best = ranges[-1].end
    return best


def production_roles(nodes: Mapping[str, PgConnInfo]) -> tuple[str | None, dict[str, Any]]:
    """The production node that is the primary now (reachable, not in recovery), and every node's health.

    Read-only: :func:`node_health` runs one ``select``."""
    health = {name: node_health(Node(name=name, conn=conn)) for name, conn in nodes.items()}
    primaries = [name for name, facts in health.items() if facts["reachable"] and not facts["in_recovery"]]
    return (primaries[0] if len(primaries) == 1 else None), health


def source_now(health: Mapping[str, Any] | None) -> SourceNow:
    """The production primary's ``now()`` and WAL position from its health, or the worker's clock."""
    if health and health.get("reachable") and health.get("checked_at"):
        return SourceNow(datetime.fromisoformat(health["checked_at"]), health.get("current_lsn"), "")
    why = (health or {}).get("error") or "no primary was found"
    return SourceNow(
        datetime.now(UTC), None, f" (the production primary could not be read: {why}; counted to the worker's clock)"
    )


def data_loss(point: RestoredPoint, now: SourceNow) -> tuple[float, str]:
    """Seconds of data a recovery to ``point`` would lose at ``now``, and how that was measured.

    As the lag gate does, the WAL positions decide first: a copy at or past the source's position lost
    nothing, however old its last transaction. Otherwise the time from the copy's point to the source's
    clock counts (what the incident report counts for a restore)."""
    behind = parse_lsn(now.lsn) - parse_lsn(point.lsn) if now.lsn and point.lsn else None
    where = (
        f"the copy holds the data up to {point.time.isoformat()} (LSN {point.lsn}), the source was at "
        f"{now.time.isoformat()} (LSN {now.lsn}){now.note}"
    )
    if behind is not None and behind <= 0:
        return 0.0, f"{where}: nothing lost (the copy reaches the source's WAL position)"
    lost = max(0.0, (now.time - point.time).total_seconds())
    wal = f", {behind} bytes of WAL behind" if behind is not None else ""
    # An upper bound: the WAL since the copy's point may hold no transaction at all (a checkpoint, say).
    return lost, f"{where}: at most {human_duration(round(lost, 1))} lost{wal}"


def replication_conn(conn: PgConnInfo, copy: Node) -> PgConnInfo:
    """A production replication role's connection, pointed at the copy (the role and its password came with
    the backup)."""
    return replace(conn, host=copy.conn.host, port=copy.conn.port, options={})


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
