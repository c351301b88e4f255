"""A trigger that re-measures replication until it is healthy again or a timeout passes.

It carries the watch's settings (:class:`drflow.engines.postgres.replication_watch.ReplicationWatch`): connection
ids, never connection details; the triggerer resolves them itself, so no password is written into the
trigger's serialized arguments in the metadata database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from drflow.engines.postgres.replication_watch import ReplicationWatch


class ReplicationLagTrigger(BaseTrigger):
    """Poll :meth:`ReplicationWatch.measure` every ``poke_interval`` s; fire once, healthy or at ``timeout`` s.

    The event's payload is ``{"status": "healthy"|"unhealthy", "report": <report JSON>, "checks": n}``,
    or ``{"status": "error", "message": ...}`` when the connections cannot be resolved.
    """

    def __init__(
        self,
        *,
        watch: ReplicationWatch | Mapping[str, Any],
        poke_interval: float = 10.0,
        timeout: float = 60.0,
    ) -> None:
        super().__init__()
        self.watch = watch if isinstance(watch, ReplicationWatch) else ReplicationWatch.from_params(watch)
        self.poke_interval = poke_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"watch": self.watch.to_params(), "poke_interval": self.poke_interval, "timeout": self.timeout},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = time.monotonic() + self.timeout
        checks = 0
        while True:
            try:
                # Blocking psycopg calls and connection lookups stay off the triggerer's event loop.
                report = await asyncio.to_thread(self.watch.measure)
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
