"""File-storage operators: back up a files or s3-prefix datastore; restore drill of one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts import FilesBackupRun
from drflow.contracts.drills import FilesDrillRun


class FilesBackupOperator(BaseOperator):
    """A full, incremental or differential backup of the component's files into every target."""

    ui_color = "#d1f2eb"

    def __init__(self, *, run: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = FilesBackupRun.from_params(run)

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.jobs.files import FilesBackupRequest, take_files_backup
        from drflow.operators.common import backup_id_for_run, manifest_summary

        run = self.run
        dag_run = context["dag_run"]
        request = FilesBackupRequest(
            spec_name=run.spec_name,
            component=run.component,
            policy=run.policy,
            backup_id=backup_id_for_run(run.policy, dag_run.run_id, dag_run.run_after),
            targets=run.targets,
            retention_days=run.retention_days,
            retention_policy=run.retention_policy,
            work_dir=run.work_dir,
            level=run.level,  # type: ignore[arg-type]  # checked by FilesBackupRun.from_params
            datastore=run.datastore,
            timeout=self.execution_timeout.total_seconds() if self.execution_timeout else None,
        )
        manifest = take_files_backup(request)
        self.log.info(
            "%s backup %s (parent %s): %d bytes stored in %.1fs; %s",
            manifest.backup_type,
            manifest.backup_id,
            manifest.parent_id,
            manifest.stored_bytes,
            manifest.duration_s,
            {k: v for k, v in manifest.extra.items() if k != "tar_warnings"},
        )
        return {**manifest_summary(manifest), "backup_type": manifest.backup_type, "parent_id": manifest.parent_id}


class FilesDrillOperator(BaseOperator):
    """Restore the newest (or the trigger form's) file backup into scratch and compare it with the backup."""

    ui_color = "#fad7a0"

    def __init__(self, *, drill: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drill = FilesDrillRun.from_params(drill)

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.jobs.files_drill import run_files_drill

        run = self.drill
        requested = (context.get("params") or {}).get("backup_id") or None
        result = run_files_drill(run.spec_name, run.component, run.targets, backup_id=requested, work_dir=run.work_dir)
        self.log.info("restored %s in %.1fs; checks: %s", result["backup_id"], result["restore_s"], result["checks"])
        return result
