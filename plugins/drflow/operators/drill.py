"""Restore drill operators: restore into a scratch instance and validate; judge and report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator


class RestoreDrillOperator(BaseOperator):
    ui_color = "#fad7a0"

    def __init__(
        self,
        *,
        spec_name: str,
        component: str,
        target: Mapping[str, Any],
        database: str,
        bin_dir: str,
        validation: Sequence[Mapping[str, Any]],
        work_dir: str | None = None,
        fallback_targets: Sequence[Mapping[str, Any]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.component = component
        self.target = dict(target)
        self.fallback_targets = [dict(t) for t in fallback_targets]
        self.database = database
        self.bin_dir = bin_dir
        self.validation = [dict(v) for v in validation]
        self.work_dir = work_dir

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.hosts import LocalHost
        from drflow.jobs.drill import run_restore_drill
        from drflow.jobs.restore import find_copies
        from drflow.operators.common import upstream_result
        from drflow.store.factory import target_catalogs

        backup_id = upstream_result(context, "select_backup")["backup_id"]
        catalogs = target_catalogs(self.spec_name, [self.target, *self.fallback_targets])
        result = run_restore_drill(
            find_copies(catalogs, self.component, backup_id),
            database=self.database,
            validation=self.validation,
            host=LocalHost(),
            bin_dir=Path(self.bin_dir),
            work_dir=self.work_dir,
        )
        self.log.info("restored %s in %.1fs; checks: %s", backup_id, result["restore_s"], result["checks"])
        if result.get("suite_summary"):
            self.log.info("validation suite: %s", result["suite_summary"])
        return result


class DrillReportOperator(BaseOperator):
    ui_color = "#f9e79f"

    def __init__(
        self,
        *,
        spec_name: str,
        component: str,
        target: Mapping[str, Any],
        drill: str,
        rto_s: int,
        rpo_s: int,
        notes_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.component = component
        self.target = dict(target)
        self.drill = drill
        self.rto_s = rto_s
        self.rpo_s = rpo_s
        self.notes_conn_id = notes_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.jobs.drill import drill_verdict
        from drflow.jobs.summaries import drill_summary
        from drflow.operators.common import publish_note, upstream_result
        from drflow.store.factory import target_catalogs

        result = upstream_result(context, "restore_and_validate")
        report = {
            "spec": self.spec_name,
            "component": self.component,
            "drill": self.drill,
            "dag_id": context["dag"].dag_id,
            "run_id": context["dag_run"].run_id,
            **drill_verdict(result, self.rto_s, self.rpo_s),
        }
        report["summary"] = drill_summary(report)
        [(_, catalog)] = target_catalogs(self.spec_name, [self.target])
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        key = catalog.write_report(self.component, "drill", f"{stamp}-{self.drill}", report)
        report["report_key"] = key
        publish_note(context, f"{report['summary']}\n\nReport: `{key}`", self.notes_conn_id, self.log)
        for warning in report["warnings"]:
            self.log.warning("%s", warning)
        if not report["passed"]:
            raise AirflowFailException(
                f"restore drill {self.drill} of {self.component} failed: "
                + "; ".join(report["problems"])
                + f". Report: {key}"
            )
        return report
