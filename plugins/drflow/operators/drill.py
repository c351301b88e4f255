"""Restore drill operators: restore into a scratch instance and validate; judge and report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts.drills import DrillReportRun, RestoreDrillRun


class RestoreDrillOperator(BaseOperator):
    ui_color = "#fad7a0"

    def __init__(self, *, drill: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drill = RestoreDrillRun.from_params(drill)

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.hosts import LocalHost
        from drflow.jobs.drill import run_restore_drill
        from drflow.jobs.restore import find_copies
        from drflow.operators.common import upstream_result
        from drflow.store.factory import target_catalogs

        run = self.drill
        backup_id = upstream_result(context, "select_backup")["backup_id"]
        catalogs = target_catalogs(run.spec_name, [run.target, *run.fallback_targets])
        result = run_restore_drill(
            find_copies(catalogs, run.component, backup_id),
            database=run.database,
            validation=run.validation,
            host=LocalHost(),
            bin_dir=Path(run.bin_dir),
            work_dir=run.work_dir,
        )
        self.log.info("restored %s in %.1fs; checks: %s", backup_id, result["restore_s"], result["checks"])
        if result.get("suite_summary"):
            self.log.info("validation suite: %s", result["suite_summary"])
        return result


class DrillReportOperator(BaseOperator):
    ui_color = "#f9e79f"

    def __init__(self, *, drill: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drill = DrillReportRun.from_params(drill)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.jobs.drill import drill_verdict
        from drflow.jobs.summaries import drill_summary
        from drflow.operators.common import publish_note, upstream_result
        from drflow.store.factory import target_catalogs

        run, drill = self.drill, self.drill.facts
        result = upstream_result(context, "restore_and_validate")
        report = {
            "spec": run.spec_name,
            "component": run.component,
            "drill": drill.name,
            "dag_id": context["dag"].dag_id,
            "run_id": context["dag_run"].run_id,
            **drill_verdict(result, drill.rto_s, drill.rpo_s),
        }
        report["summary"] = drill_summary(report)
        [(_, catalog)] = target_catalogs(run.spec_name, [run.target])
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        key = catalog.write_report(run.component, "drill", f"{stamp}-{drill.name}", report)
        report["report_key"] = key
        publish_note(context, f"{report['summary']}\n\nReport: `{key}`", drill.notes_conn_id, self.log)
        for warning in report["warnings"]:
            self.log.warning("%s", warning)
        if not report["passed"]:
            raise AirflowFailException(
                f"restore drill {drill.name} of {run.component} failed: "
                + "; ".join(report["problems"])
                + f". Report: {key}"
            )
        return report
