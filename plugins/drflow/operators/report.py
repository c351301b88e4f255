"""The RPO-compliance operator: measure, write the report to the store, fail when out of compliance."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts.rpo import RpoReportRun


class RpoComplianceOperator(BaseOperator):
    ui_color = "#e8daef"

    def __init__(self, *, report: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report = RpoReportRun.from_params(report)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.jobs.rpo import rpo_compliance
        from drflow.jobs.summaries import achievable_text, compliance_line, rpo_summary
        from drflow.operators.common import publish_note
        from drflow.store.factory import target_catalogs
        from drflow.units import human_duration

        run = self.report
        now = datetime.now(UTC)
        report = rpo_compliance(run.spec_name, run.components, now)
        [(_, catalog)] = target_catalogs(run.spec_name, [run.target])
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        for result in report["components"]:
            catalog.write_report(
                result["component"], "rpo-compliance", stamp, {**result, "checked_at": now.isoformat()}
            )
            if result["compliant"]:
                self.log.info("%s", compliance_line(result))
            else:
                self.log.warning("%s", compliance_line(result))
            for line in result["problems"] + result["notes"]:
                self.log.warning("%s: %s", result["component"], line)
        report["summary"] = rpo_summary(report)
        publish_note(context, report["summary"], run.notes_conn_id, self.log)
        failing = [r for r in report["components"] if not r["compliant"]]
        if failing:
            raise AirflowFailException(
                "out of RPO compliance: "
                + "; ".join(
                    f"{r['component']} (RPO {human_duration(r['rpo_s'])}, {achievable_text(r)}"
                    + (f": {r['problems'][0]}" if r["problems"] else "")
                    + ")"
                    for r in failing
                )
                + ". Check the replicas and the backup and WAL DAGs of these components."
            )
        return report
