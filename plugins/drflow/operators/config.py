"""Configuration operators: store a new version after a change; drill the newest version."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts import ConfigRun
from drflow.contracts.drills import ConfigDrillRun


class ConfigBackupOperator(BaseOperator):
    """Read the config, store it as a version where it differs from the newest (every target on its own)."""

    ui_color = "#d5f5e3"

    def __init__(self, *, config: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_run = ConfigRun.from_params(config)

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.jobs.config import back_up_config

        run = self.config_run
        outcome = back_up_config(
            run.spec_name, run.component, run.source, run.targets, retention_days=run.retention_days
        )
        self.log.info(
            "config %s (%d bytes): stored in %s, unchanged in %s",
            outcome.sha256,
            outcome.size,
            ", ".join(outcome.stored) or "none",
            ", ".join(outcome.unchanged) or "none",
        )
        return outcome.to_json()


class ConfigDrillOperator(BaseOperator):
    """Restore the newest version into scratch, compare its hash, run the spec's validation command, report."""

    ui_color = "#fdebd0"

    def __init__(self, *, drill: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drill = ConfigDrillRun.from_params(drill)

    def execute(self, context: Any) -> dict[str, Any]:
        from datetime import UTC, datetime

        from airflow.sdk.exceptions import AirflowFailException

        from drflow.engines.config.source import ConfigSourceError, read_config
        from drflow.jobs.config import config_drill
        from drflow.jobs.config_verdict import judge_config_drill
        from drflow.jobs.summaries import config_drill_summary
        from drflow.operators.common import publish_note

        run, drill = self.drill.config, self.drill.facts
        started = datetime.now(UTC)
        # A failed validation command is part of the verdict (see _validator), recorded like any other problem.
        result = config_drill(
            run.spec_name, run.component, run.targets, work_dir=self.drill.work_dir, validate=self._validator()
        )
        try:
            live: str | None = read_config(run.source).sha256
        except (ConfigSourceError, OSError) as exc:
            self.log.warning("the live config could not be read: %s", exc)
            live = None
        judged = judge_config_drill(
            result, live_sha256=live, rto_s=drill.rto_s, rpo_s=drill.rpo_s, now=datetime.now(UTC)
        )
        report = {**result, **judged}
        report["summary"] = config_drill_summary(run.component, report)
        publish_note(context, report["summary"], drill.notes_conn_id, self.log)
        report["report_key"] = self._record(context, started, report)
        if not report["passed"]:
            raise AirflowFailException(
                f"config drill of {run.component} failed: {'; '.join(report['problems'])}. "
                f"Report: {report['report_key']}"
            )
        return report

    def _record(self, context: Any, started: datetime, result: dict[str, Any]) -> str | None:
        """The drill's report (kind `drill`, drill `config`) in the target drilled, else the first that takes it."""
        from drflow.store.base import StoreError
        from drflow.store.factory import target_catalogs

        run, name = self.drill.config, self.drill.facts.name
        report = {
            "spec": run.spec_name,
            "component": run.component,
            "drill": name,
            "dag_id": getattr(context.get("dag"), "dag_id", None),
            "run_id": getattr(context.get("dag_run"), "run_id", None),
            "started_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "restore_s": round((datetime.now(UTC) - started).total_seconds(), 3),
            **{k: v for k, v in result.items() if k != "restored_to"},
        }
        drilled = [t for t in run.targets if t.get("name") == result.get("target")]
        for name, catalog in target_catalogs(run.spec_name, [*drilled, *run.targets]):
            try:
                key = catalog.write_report(run.component, "drill", f"{started:%Y%m%dT%H%M%SZ}-{name}", report)
            except StoreError as exc:  # a report is evidence, not the drill: the next target may take it
                self.log.warning("could not write the drill report to %s: %s", name, exc)
                continue
            self.log.info("drill report written to %s", catalog.store.url_for(key))
            return key
        return None

    def _validator(self) -> Any:
        command, timeout = self.drill.validate_command, self.drill.command_timeout_s
        if not command:
            return None
        from drflow.actions.command import CommandError, run_reviewed_command

        def validate(restored: Path) -> dict[str, Any]:
            try:
                return {**run_reviewed_command([command, str(restored)], timeout_s=timeout).to_json(), "passed": True}
            except CommandError as exc:  # a failed check is the drill's verdict, recorded in its report
                return {"argv": [command, str(restored)], "passed": False, "error": str(exc)}

        return validate
