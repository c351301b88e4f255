"""The replication-watch sensor: measure once; when unhealthy, wait (deferred) for recovery or fail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, NoReturn

from airflow.sdk import BaseSensorOperator

# How long the triggerer may overrun the trigger's own timeout before Airflow fails the task itself.
DEFER_GRACE_S = 60


class ReplicationLagSensor(BaseSensorOperator):
    """Check replication lag and faults of a primary's replicas.

    Healthy (warnings at most) → returns the report (XCom). Critical alerts → deferrable: defer to
    :class:`ReplicationLagTrigger`, which re-checks every ``poke_interval`` s for up to ``timeout`` s
    and succeeds as soon as replication recovers; otherwise (or at the timeout) fail with every
    alert's message. A failed check also leaves its report in XCom under the key ``report``.
    """

    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        primary_conn_id: str,
        database: str,
        replicas: Sequence[Mapping[str, Any]],
        warn_lag_s: float,
        max_lag_s: float,
        max_slot_retained_bytes: int,
        connect_timeout: int = 5,
        deferrable: bool = True,
        poke_interval: float = 10.0,
        timeout: float = 60.0,
        slot_watch: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.slot_watch = dict(slot_watch) if slot_watch else None
        self.primary_conn_id = primary_conn_id
        self.database = database
        self.replicas = [dict(r) for r in replicas]
        self.warn_lag_s = warn_lag_s
        self.max_lag_s = max_lag_s
        self.max_slot_retained_bytes = max_slot_retained_bytes
        self.connect_timeout = connect_timeout
        self.deferrable = deferrable

    def _watch_kwargs(self) -> dict[str, Any]:
        return {
            "primary_conn_id": self.primary_conn_id,
            "database": self.database,
            "replicas": self.replicas,
            "warn_lag_s": self.warn_lag_s,
            "max_lag_s": self.max_lag_s,
            "max_slot_retained_bytes": self.max_slot_retained_bytes,
            "connect_timeout": self.connect_timeout,
            "slot_watch": self.slot_watch,
        }

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.triggers.replication import ReplicationLagTrigger, measure_from_conn_ids

        report = measure_from_conn_ids(**self._watch_kwargs()).to_json()
        if report["healthy"]:
            return self._succeed(report)
        if not self.deferrable or self.timeout <= 0:
            self._fail(context, report)
        for line in _alert_lines(report):
            self.log.warning("%s", line)
        self.log.info("waiting up to %ss for replication to recover (deferred)", self.timeout)
        self.defer(
            trigger=ReplicationLagTrigger(
                **self._watch_kwargs(), poke_interval=self.poke_interval, timeout=self.timeout
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFER_GRACE_S),
        )

    def execute_complete(self, context: Any, event: Mapping[str, Any]) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        if event.get("status") == "error":
            raise AirflowFailException(f"{event.get('message')}; check the Airflow connections named in the spec")
        report = dict(event["report"])
        if report["healthy"]:
            self.log.info("replication recovered after %s checks", event.get("checks"))
            return self._succeed(report)
        self._fail(context, report)

    def _succeed(self, report: dict[str, Any]) -> dict[str, Any]:
        for line in _alert_lines(report):
            self.log.warning("%s", line)
        for replica in report["replicas"]:
            self.log.info(
                "replica %s: %s, lag %s s / %s bytes",
                replica["name"],
                replica["state"],
                replica["lag_seconds"],
                replica["lag_bytes"],
            )
        return report

    def _fail(self, context: Any, report: dict[str, Any]) -> NoReturn:
        from airflow.sdk.exceptions import AirflowFailException

        context["ti"].xcom_push(key="report", value=report)
        lines = _alert_lines(report)
        raise AirflowFailException(
            f"replication of {len(report['replicas'])} replica(s) is unhealthy:\n" + "\n".join(f"- {x}" for x in lines)
        )


def _alert_lines(report: Mapping[str, Any]) -> list[str]:
    from drflow.engines.postgres.replication_report import alert_lines

    return alert_lines(report)
