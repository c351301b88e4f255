"""Configuration operators: store a new version after a change; drill the newest version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts import ConfigRun


class ConfigBackupOperator(BaseOperator):
    """Read the config, store it as a version where it differs from the newest (every target on its own)."""

    ui_color = "#d5f5e3"

    def __init__(self, *, config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
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

    def __init__(
        self,
        *,
        config: dict[str, Any],
        rto_s: int,
        rpo_s: int,
        validate_command: str | None = None,
        command_timeout_s: float = 300.0,
        work_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.config_run = ConfigRun.from_params(config)
        self.validate_command = validate_command
        self.command_timeout_s = command_timeout_s
        self.work_dir = work_dir
        self.rto_s = rto_s
        self.rpo_s = rpo_s

    def execute(self, context: Any) -> dict[str, Any]:
        from datetime import UTC, datetime

        from airflow.sdk.exceptions import AirflowFailException

        from drflow.engines.config.source import ConfigSourceError, read_config
        from drflow.jobs.config import config_drill
        from drflow.jobs.config_verdict import judge_config_drill
        from drflow.store.factory import target_catalogs

        run = self.config_run
        result = config_drill(
            run.spec_name, run.component, run.targets, work_dir=self.work_dir, validate=self._validator()
        )
        try:
            live: str | None = read_config(run.source).sha256
        except (ConfigSourceError, OSError) as exc:
            self.log.warning("the live config could not be read: %s", exc)
            live = None
        report = {
            "spec": run.spec_name,
            "component": run.component,
            "drill": "config",
            "dag_id": getattr(context.get("dag"), "dag_id", None),
            "run_id": getattr(context.get("dag_run"), "run_id", None),
            **judge_config_drill(result, live_sha256=live, rto_s=self.rto_s, rpo_s=self.rpo_s, now=datetime.now(UTC)),
        }
        [target] = [t for t in run.targets if t.get("name") == result["target"]]
        [(_, catalog)] = target_catalogs(run.spec_name, [target])
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        report["report_key"] = catalog.write_report(run.component, "drill", f"{stamp}-config", report)
        if not report["passed"]:
            raise AirflowFailException(
                f"config drill of {run.component} failed: {'; '.join(report['problems'])}. "
                f"Report: {report['report_key']}"
            )
        return report

    def _validator(self) -> Any:
        if not self.validate_command:
            return None
        from drflow.actions.command import CommandError, run_reviewed_command

        command, timeout = self.validate_command, self.command_timeout_s

        def validate(restored: Path) -> dict[str, Any]:
            try:
                return {**run_reviewed_command([command, str(restored)], timeout_s=timeout).to_json(), "passed": True}
            except CommandError as exc:  # a failed check is the drill's verdict, recorded in its report
                return {"argv": [command, str(restored)], "passed": False, "error": str(exc)}

        return validate
