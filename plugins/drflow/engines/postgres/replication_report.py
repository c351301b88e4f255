"""What a replication check finds: the status of a primary, its replicas and their slots, and the alerts.

Every alert has a code of :data:`ALERT_CODES` with its severity; critical alerts make the report
unhealthy. How the figures are measured: :mod:`drflow.engines.postgres.replication`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from drflow.engines.postgres.conninfo import PgConnInfo

Severity = Literal["warning", "critical"]

ALERT_CODES: dict[str, Severity] = {
    "primary_unreachable": "critical",
    "primary_in_recovery": "critical",
    "replica_unreachable": "critical",
    "replica_not_in_recovery": "critical",
    "replica_not_streaming": "critical",
    "replay_paused": "critical",
    "slot_missing": "critical",
    "slot_retention_exceeded": "critical",
    "lag_exceeded": "critical",
    "sync_fallback": "critical",
    "no_sync_standby": "critical",
    "slot_inactive": "warning",
    "slot_orphaned": "warning",
    "lag_warning": "warning",
    "insufficient_privilege": "warning",
}


@dataclass(frozen=True)
class ReplicaTarget:
    name: str
    conn: PgConnInfo
    slot: str | None = None
    """Physical replication slot on the primary that this replica should stream from."""


@dataclass(frozen=True)
class Alert:
    code: str
    severity: Severity
    replica: str | None
    message: str
    """What is wrong and what to do about it."""


@dataclass
class SlotStatus:
    name: str
    exists: bool
    active: bool | None = None
    active_pid: int | None = None
    restart_lsn: str | None = None
    retained_bytes: int | None = None
    wal_status: str | None = None


@dataclass
class ReplicaStatus:
    name: str
    server: str
    state: Literal["streaming", "paused", "not_streaming", "not_in_recovery", "unreachable"]
    reachable: bool = False
    in_recovery: bool | None = None
    primary_lsn: str | None = None
    receive_lsn: str | None = None
    replay_lsn: str | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    last_replay_at: str | None = None
    """Commit time (primary's clock) of the last transaction the replica replayed."""
    replay_pause_state: str | None = None
    wal_receiver_status: str | None = None
    primary_view: dict[str, Any] | None = None
    """The replica's row in the primary's pg_stat_replication (state, sync_state, replay_lag_s …)."""
    slot: SlotStatus | None = None
    error: str | None = None


@dataclass
class PrimaryStatus:
    server: str
    reachable: bool = False
    in_recovery: bool | None = None
    current_lsn: str | None = None
    server_version: str | None = None
    error: str | None = None


@dataclass
class ReplicationReport:
    checked_at: str
    thresholds: dict[str, Any]
    primary: PrimaryStatus
    replicas: list[ReplicaStatus] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    slots: list[dict[str, Any]] = field(default_factory=list)
    """The spec's other slots on the primary (WAL archiving, orphans), when the watch was given them."""
    synchronous: dict[str, Any] | None = None
    """When the spec requires synchronous replication: the primary's settings and its standbys' sync states."""

    @property
    def critical(self) -> list[Alert]:
        return [a for a in self.alerts if a.severity == "critical"]

    @property
    def warnings(self) -> list[Alert]:
        return [a for a in self.alerts if a.severity == "warning"]

    @property
    def healthy(self) -> bool:
        return not self.critical

    def codes(self, replica: str | None = None) -> set[str]:
        return {a.code for a in self.alerts if replica is None or a.replica == replica}

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["healthy"] = self.healthy
        return data


def alert_lines(report: Mapping[str, Any]) -> list[str]:
    """``[severity] code replica: message`` for every alert of a report in its JSON form."""
    return [
        f"[{a['severity']}] {a['code']}" + (f" ({a['replica']})" if a.get("replica") else "") + f": {a['message']}"
        for a in report.get("alerts", [])
    ]
