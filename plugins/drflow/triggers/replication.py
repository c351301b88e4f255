"""A trigger that re-measures replication until it is healthy again or a timeout passes.

It carries connection ids, never connection details: the triggerer resolves them itself, so no
password is written into the trigger's serialized arguments in the metadata database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from drflow.engines.postgres.replication_report import ReplicationReport


def measure_from_conn_ids(
    *,
    primary_conn_id: str,
    database: str,
    replicas: Sequence[Mapping[str, Any]],
    warn_lag_s: float,
    max_lag_s: float,
    max_slot_retained_bytes: int,
    connect_timeout: int = 5,
    slot_watch: Mapping[str, Any] | None = None,
) -> ReplicationReport:
    """Resolve the Airflow connections (blocking) and measure replication once; with ``slot_watch``
    (:func:`drflow.spec.slots.slot_watch`) also the WAL the spec's other slots on the primary hold back."""
    from drflow.engines.postgres.conninfo import PgConnInfo
    from drflow.engines.postgres.replication import measure_replication
    from drflow.engines.postgres.replication_report import ReplicaTarget

    targets = [
        ReplicaTarget(
            name=str(r["name"]),
            conn=PgConnInfo.from_airflow_conn(str(r["conn_id"]), dbname=database),
            slot=r.get("slot"),
        )
        for r in replicas
    ]
    primary = PgConnInfo.from_airflow_conn(primary_conn_id, dbname=database)
    report = measure_replication(
        primary,
        targets,
        warn_lag_s=warn_lag_s,
        max_lag_s=max_lag_s,
        max_slot_retained_bytes=max_slot_retained_bytes,
        connect_timeout=connect_timeout,
    )
    if slot_watch and report.primary.reachable and report.primary.error is None:
        _watch_slots(primary, slot_watch, report, connect_timeout)
    return report


def _watch_slots(primary: Any, watch: Mapping[str, Any], report: ReplicationReport, timeout: int) -> None:
    """Add the alerts of the spec's WAL slots and orphans (replica slots are measured with their replica)."""
    from drflow.engines.postgres.slots import SlotError, watch_slots

    try:
        slots = watch_slots(primary, watch, timeout_s=timeout)
    except SlotError as exc:  # the primary went away since: the next check says so
        report.primary.error = str(exc)
        return
    report.slots = [slot.to_json() for slot in slots]
    report.alerts += [alert for slot in slots if slot.kind != "replica" for alert in slot.alerts]


class ReplicationLagTrigger(BaseTrigger):
    """Poll :func:`measure_replication` every ``poke_interval`` s; fire once, healthy or at ``timeout`` s.

    The event's payload is ``{"status": "healthy"|"unhealthy", "report": <report JSON>, "checks": n}``,
    or ``{"status": "error", "message": ...}`` when the connections cannot be resolved.
    """

    def __init__(
        self,
        *,
        primary_conn_id: str,
        database: str,
        replicas: Sequence[Mapping[str, Any]],
        warn_lag_s: float,
        max_lag_s: float,
        max_slot_retained_bytes: int,
        poke_interval: float = 10.0,
        timeout: float = 60.0,
        connect_timeout: int = 5,
        slot_watch: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.slot_watch = dict(slot_watch) if slot_watch else None
        self.primary_conn_id = primary_conn_id
        self.database = database
        self.replicas = [dict(r) for r in replicas]
        self.warn_lag_s = warn_lag_s
        self.max_lag_s = max_lag_s
        self.max_slot_retained_bytes = max_slot_retained_bytes
        self.poke_interval = poke_interval
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "primary_conn_id": self.primary_conn_id,
                "database": self.database,
                "replicas": self.replicas,
                "warn_lag_s": self.warn_lag_s,
                "max_lag_s": self.max_lag_s,
                "max_slot_retained_bytes": self.max_slot_retained_bytes,
                "poke_interval": self.poke_interval,
                "timeout": self.timeout,
                "connect_timeout": self.connect_timeout,
                "slot_watch": self.slot_watch,
            },
        )

    def _measure(self) -> ReplicationReport:
        return measure_from_conn_ids(
            primary_conn_id=self.primary_conn_id,
            database=self.database,
            replicas=self.replicas,
            warn_lag_s=self.warn_lag_s,
            max_lag_s=self.max_lag_s,
            max_slot_retained_bytes=self.max_slot_retained_bytes,
            connect_timeout=self.connect_timeout,
            slot_watch=self.slot_watch,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = time.monotonic() + self.timeout
        checks = 0
        while True:
            try:
                # Blocking psycopg calls and connection lookups stay off the triggerer's event loop.
                report = await asyncio.to_thread(self._measure)
            except Exception as exc:  # a missing or broken connection: report it instead of crashing the trigger
                yield TriggerEvent({"status": "error", "message": f"cannot check replication: {exc}"})
                return
            checks += 1
            if report.healthy or time.monotonic() + self.poke_interval > deadline:
                status = "healthy" if report.healthy else "unhealthy"
                yield TriggerEvent({"status": status, "report": report.to_json(), "checks": checks})
                return
            self.log.info(
                "replication still unhealthy (%s); checking again in %ss",
                ", ".join(sorted({a.code for a in report.critical})),
                self.poke_interval,
            )
            await asyncio.sleep(self.poke_interval)
