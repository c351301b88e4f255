"""Backups taken from a standby (`from: <replica>` on a backup policy): is the replica fit to be the source?

A backup from a replica costs the primary nothing but is only as new as the replica's replay: a replica
that lags more than the component's RPO would store data already older than the RPO allows, so the
backup is refused, with the lag, the RPO and what to do. Lag is measured as the failover lag gate does
(:func:`~drflow.engines.postgres.failover.measure_lag`: LSNs against the primary, else the age of the
last replayed commit as an upper bound). pgBackRest's ``backup-standby`` also needs the primary: it
starts and stops the backup there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.failover import measure_lag
from drflow.engines.postgres.node import Node, node_health
from drflow.engines.postgres.refusal import LagExceeded, LagUnknown, NotInRecovery, ReplicaUnreachable
from drflow.units import human_duration


@dataclass(frozen=True)
class StandbySource:
    """The replica a policy backs up from: its name in the spec, how to reach it, the lag it may have."""

    name: str
    conn: PgConnInfo
    max_lag_s: float
    """The component's RPO."""
    data_directory: str | None = None
    """Its data directory on the primary's host (pgBackRest's pg2-path)."""


def check_standby_source(
    primary: PgConnInfo, standby: StandbySource, *, policy: str, need_primary: bool = False
) -> dict[str, Any]:
    """Refuse (:class:`~drflow.engines.postgres.refusal.Refused`) a replica that is unreachable, not a
    replica, or lags more than ``standby.max_lag_s``; with ``need_primary``, also an unreachable primary.
    Returns the measurement (for the manifest)."""
    node = Node(name=standby.name, conn=standby.conn)
    name = node.describe()
    instead = f"or remove `from: {standby.name}` from policy {policy} to back up the primary"
    health = node_health(node)
    if not health["reachable"]:
        raise ReplicaUnreachable(
            f"replica {name}, the source of backup policy {policy}, is unreachable ({health['error']})",
            f"start it or fix its Airflow connection and retry, {instead}",
            {"replica": health},
        )
    if not health["in_recovery"]:
        raise NotInRecovery(
            f"{name}, the source of backup policy {policy}, is not in recovery: it is no replica (promoted?)",
            f"rebuild it as a replica (rebuild_replica) and retry, {instead}",
            {"replica": health},
        )
    measured = measure_lag(Node(name="primary", conn=primary), node, health)
    reference = measured["primary"] or {}
    if need_primary and not reference.get("reachable"):
        raise ReplicaUnreachable(
            f"pgBackRest backs up replica {name} with backup-standby, which starts and stops the backup on the "
            f"primary, and the primary {primary.describe()} is unreachable ({reference.get('error')})",
            f"make the primary reachable and retry, {instead}",
            {"replica": health, "primary": reference},
        )
    lag = measured["lag_s"]
    result = {"replica": standby.name, "lag_s": lag, "lag_bytes": measured["lag_bytes"], "method": measured["method"]}
    if lag is None:
        behind = f"{measured['lag_bytes']} bytes of WAL behind the primary" if measured["lag_bytes"] else "behind"
        unblock = "wait until it replays the primary's WAL" if measured["lag_bytes"] else "make the primary reachable"
        raise LagUnknown(
            f"replica {name} is {behind} and has replayed no transaction since it started, so how old its data "
            f"is cannot be told: a backup from it may miss more than the RPO of {human_duration(standby.max_lag_s)}",
            f"{unblock} and retry, {instead}",
            result,
        )
    if lag > standby.max_lag_s:
        wal = f", {measured['lag_bytes']} bytes of WAL" if measured.get("lag_bytes") else ""
        bound = " at most" if measured["upper_bound"] else ""
        raise LagExceeded(
            f"replica {name} is{bound} {human_duration(lag)} behind the primary{wal} ({measured['method']}), more "
            f"than the component's RPO of {human_duration(standby.max_lag_s)}: a backup of it would miss the "
            "newest commits",
            f"wait until it catches up (look for long queries or a slow disk or network on it) and retry, {instead}",
            result,
        )
    return result
