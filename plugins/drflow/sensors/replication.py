"""The replication-watch sensor: measure once; when unhealthy, wait (deferred) for recovery or fail."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, NoReturn

from airflow.sdk import BaseSensorOperator

from drflow.engines.postgres.replication_watch import ReplicationWatch

# How long the triggerer may overrun the trigger's own timeout before Airflow fails the task itself.
DEFER_GRACE_S = 60


class ReplicationLagSensor(BaseSensorOperator):
    """Check replication lag and faults of a primary's replicas, as ``watch`` (the plan's settings) says.

    Healthy (warnings at most) → returns the report (XCom). Critical alerts → deferrable: defer to
    :class:`ReplicationLagTrigger`, which re-checks every ``poke_interval`` s for up to ``timeout`` s
    and succeeds as soon as replication recovers; otherwise (or at the timeout) fail with every
    alert's message. A failed check also leaves its report in XCom under the key ``report``.
    """

    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        watch: ReplicationWatch | Mapping[str, Any],
        deferrable: bool = True,
        poke_interval: float = 10.0,
        timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.watch = watch if isinstance(watch, ReplicationWatch) else ReplicationWatch.from_params(watch)
        self.deferrable = deferrable

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.triggers.replication import ReplicationLagTrigger

        report = self.watch.measure().to_json()
        if report["healthy"]:
            return self._succeed(report)
        if not self.deferrable or self.timeout <= 0:
            self._fail(context, report)
        for line in _alert_lines(report):
            self.log.warning("%s", line)
        self.log.info("waiting up to %ss for replication to recover (deferred)", self.timeout)
        self.defer(
            trigger=ReplicationLagTrigger(watch=self.watch, poke_interval=self.poke_interval, timeout=self.timeout),
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
