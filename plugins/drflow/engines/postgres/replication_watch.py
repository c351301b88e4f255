"""What the replication watch measures, once: the settings shared by the sensor, its trigger and the plan.

Carries Airflow connection ids, never connection details: whoever measures (the worker, the triggerer)
resolves them itself, so no password is written into a task's or a trigger's serialized arguments.
Airflow-free until :meth:`ReplicationWatch.measure` resolves the connections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drflow.engines.postgres.conninfo import PgConnInfo
    from drflow.engines.postgres.replication_report import ReplicationReport
    from drflow.spec.slots import SlotWatch


@dataclass(frozen=True)
class WatchedReplica:
    """A streaming replica of the watched primary, and the slot it streams from (None: none)."""

    name: str
    conn_id: str
    slot: str | None = None


@dataclass(frozen=True)
class ReplicationWatch:
    """A primary, its replicas and the limits they are measured against."""

    primary_conn_id: str
    database: str
    replicas: tuple[WatchedReplica, ...]
    warn_lag_s: float
    max_lag_s: float
    max_slot_retained_bytes: int
    connect_timeout: int = 5
    slot_watch: SlotWatch | None = field(default=None)
    """:func:`drflow.spec.slots.slot_watch`: also the WAL the spec's other slots on the primary hold back."""
    synchronous: bool = False
    """The spec requires synchronous replication: alert when the primary fell back to asynchronous or has no
    synchronous standby (:mod:`drflow.engines.postgres.sync_replication`)."""

    def to_params(self) -> dict[str, Any]:
        """Plain JSON, for a task's arguments and a trigger's serialized form."""
        params = {f.name: getattr(self, f.name) for f in fields(self)}
        params["replicas"] = [asdict(r) for r in self.replicas]
        params["slot_watch"] = self.slot_watch.to_params() if self.slot_watch is not None else None
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ReplicationWatch:
        """The inverse of :meth:`to_params`; an unknown or missing key is a ValueError naming it."""
        from drflow.spec.slots import SlotWatch

        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown replication-watch settings {unknown}; the settings are {sorted(known)}")
        settings = dict(params)
        try:
            settings["replicas"] = tuple(WatchedReplica(**r) for r in params["replicas"])
            if params.get("slot_watch") is not None:
                settings["slot_watch"] = SlotWatch.from_params(params["slot_watch"])
            return cls(**settings)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"incomplete replication-watch settings: {exc}") from None

    def measure(self) -> ReplicationReport:
        """Resolve the Airflow connections (blocking) and measure replication once."""
        from drflow.engines.postgres.conninfo import PgConnInfo
        from drflow.engines.postgres.replication import measure_replication
        from drflow.engines.postgres.replication_report import ReplicaTarget

        targets = [
            ReplicaTarget(name=r.name, conn=PgConnInfo.from_airflow_conn(r.conn_id, dbname=self.database), slot=r.slot)
            for r in self.replicas
        ]
        primary = PgConnInfo.from_airflow_conn(self.primary_conn_id, dbname=self.database)
        report = measure_replication(
            primary,
            targets,
            warn_lag_s=self.warn_lag_s,
            max_lag_s=self.max_lag_s,
            max_slot_retained_bytes=self.max_slot_retained_bytes,
            connect_timeout=self.connect_timeout,
        )
        if self.slot_watch is not None and report.primary.reachable and report.primary.error is None:
            _watch_slots(primary, self.slot_watch, report, self.connect_timeout)
        if report.primary.reachable and report.primary.error is None:
            names = [r.name for r in self.replicas]
            _watch_sync(primary, self.database, names, report, self.connect_timeout, self.synchronous)
        return report


def _watch_slots(primary: PgConnInfo, watch: SlotWatch, report: ReplicationReport, timeout: int) -> None:
    """Add the alerts of the spec's WAL slots and orphans (replica slots are measured with their replica)."""
    from drflow.engines.postgres.slots import SlotError, watch_slots

    try:
        slots = watch_slots(primary, watch, timeout_s=timeout)
    except SlotError as exc:  # the primary went away since: the next check says so
        report.primary.error = str(exc)
        return
    report.slots = [slot.to_json() for slot in slots]
    report.alerts += [alert for slot in slots if slot.kind != "replica" for alert in slot.alerts]


def _watch_sync(
    primary: PgConnInfo, database: str, replicas: list[str], report: ReplicationReport, timeout: int, required: bool
) -> None:
    """Add the alerts of a primary that no longer replicates synchronously (one read-only check).

    Not ``required``: only the alert of a primary whose commits hang waiting for a synchronous standby.
    """
    import psycopg

    from drflow.engines.postgres.replication_report import ALERT_CODES, Alert
    from drflow.engines.postgres.sync_replication import read_sync_settings, sync_faults

    try:
        settings = read_sync_settings(primary, timeout_s=timeout)
    except psycopg.Error as exc:  # the primary went away since: the next check says so
        report.primary.error = str(exc).strip()
        return
    if required:
        report.synchronous = settings
    for code, message in sync_faults(settings, database, replicas, required):
        report.alerts.append(Alert(code=code, severity=ALERT_CODES[code], replica=None, message=message))
