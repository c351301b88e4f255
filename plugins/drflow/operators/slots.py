"""The WAL policy's slot watch: the WAL the spec's slots hold back on the primary, and orphans."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator

from drflow.spec.slots import SlotWatch


class CheckSlotsOperator(BaseOperator):
    """Fail on ``slot_retention_exceeded`` for a WAL slot or an orphan; warn about orphans (``slot_orphaned``).

    Replica slots are listed but judged by the replication watch, which owns their limit. Read-only.
    """

    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        conn_id: str,
        database: str,
        spec_name: str,
        slot_watch: Mapping[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.database = database
        self.spec_name = spec_name
        self.slot_watch = SlotWatch.from_params(slot_watch)

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.engines.postgres.conninfo import PgConnInfo
        from drflow.engines.postgres.replication_report import alert_lines
        from drflow.engines.postgres.slots import SlotError, watch_slots

        conn = PgConnInfo.from_airflow_conn(self.conn_id, dbname=self.database)
        try:
            reports = watch_slots(conn, self.slot_watch, timeout_s=30)
        except SlotError as exc:
            raise AirflowFailException(str(exc)) from exc
        alerts = []
        for report in reports:
            self.log.info(
                "slot %s: %s%s, %s held back (limit %s)%s",
                report.name,
                report.state,
                f" ({report.owner})" if report.owner else "",
                report.retained_bytes,
                report.limit_bytes,
                f"; {report.note}" if report.note else "",
            )
            if report.kind != "replica":
                alerts += report.alerts
        result = [r.to_json() for r in reports]
        lines = alert_lines(
            {"alerts": [{"code": a.code, "severity": a.severity, "message": a.message} for a in alerts]}
        )
        for line in lines:
            self.log.warning("%s", line)
        if any(a.severity == "critical" for a in alerts):
            context["ti"].xcom_push(key="slots", value=result)
            raise AirflowFailException(
                f"replication slots of {self.spec_name} on {conn.describe()} hold back too much WAL:\n"
                + "\n".join(f"- {line}" for line in lines)
            )
        return result
