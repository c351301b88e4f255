"""Configuration operators: store a new version after a change; drill the newest version."""

from __future__ import annotations

from datetime import UTC, datetime
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
    """Restore the newest version into scratch, compare its hash, run the spec's validation command."""

    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        config: dict[str, Any],
        validate_command: str | None = None,
        command_timeout_s: float = 300.0,
        work_dir: str | None = None,
        notes_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.config_run = ConfigRun.from_params(config)
        self.validate_command = validate_command
        self.command_timeout_s = command_timeout_s
        self.work_dir = work_dir
        self.notes_conn_id = notes_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.actions.command import CommandError
        from drflow.jobs.config import config_drill
        from drflow.jobs.summaries import config_drill_summary
        from drflow.operators.common import publish_note

        run = self.config_run
        started = datetime.now(UTC)
        try:
            result = config_drill(
                run.spec_name,
                run.component,
                run.targets,
                work_dir=self.work_dir,
                validate=self._validator(),
            )
        except CommandError as exc:
            note = f"FAILED: config drill of `{run.component}`: the validation command failed\n\n{exc}"
            publish_note(context, note, self.notes_conn_id, self.log)
            self._record(context, started, {"passed": False, "problems": [f"validation command failed: {exc}"]})
            raise AirflowFailException(f"config drill of {run.component}: validation command failed: {exc}") from None
        result["summary"] = config_drill_summary(run.component, result)
        publish_note(context, result["summary"], self.notes_conn_id, self.log)
        self._record(context, started, result)
        if not result["passed"]:
            raise AirflowFailException(
                f"config drill of {run.component}: version {result['version_id']} restored with hash "
                f"{result['restored_sha256']}, not the recorded {result['expected_sha256']}: the stored copy is "
                "corrupt; run the config backup again and check the store"
            )
        return result

    def _record(self, context: Any, started: datetime, result: dict[str, Any]) -> None:
        """The drill's report (kind `drill`, drill `config`) in the target drilled, else the first that takes it."""
        from drflow.store.base import StoreError
        from drflow.store.factory import target_catalogs

        run = self.config_run
        report = {
            "spec": run.spec_name,
            "component": run.component,
            "drill": "config",
            "dag_id": context["dag"].dag_id,
            "run_id": context["dag_run"].run_id,
            "started_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "restore_s": round((datetime.now(UTC) - started).total_seconds(), 3),
            **{k: v for k, v in result.items() if k != "restored_to"},
        }
        drilled = [t for t in run.targets if t.get("name") == result.get("target")]
        for name, catalog in target_catalogs(run.spec_name, [*drilled, *run.targets]):
            try:
                key = catalog.write_report(run.component, "drill", f"{started:%Y%m%dT%H%M%SZ}-config", report)
            except StoreError as exc:  # a report is evidence, not the drill: the next target may take it
                self.log.warning("could not write the drill report to %s: %s", name, exc)
                continue
            self.log.info("drill report written to %s", catalog.store.url_for(key))
            return

    def _validator(self) -> Any:
        if not self.validate_command:
            return None
        from drflow.actions.command import run_reviewed_command

        command, timeout = self.validate_command, self.command_timeout_s

        def validate(restored: Path) -> dict[str, Any]:
            return run_reviewed_command([command, str(restored)], timeout_s=timeout).to_json()

        return validate
