"""The copy operator: fill a policy's copy targets (secondary region, offline) from its verified backups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts import CopyRun


class CopyBackupOperator(BaseOperator):
    """Copy every entry of the policy that a copy target lacks, each destination on its own; fail naming the failed."""

    ui_color = "#d6eaf8"

    def __init__(self, *, copy: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.copy = CopyRun.from_params(copy)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException

        from drflow.jobs.copy import copy_backups
        from drflow.store.lock import ObjectLock

        run = self.copy
        result = copy_backups(
            run.spec_name,
            run.component,
            run.policy,
            run.sources,
            run.destinations,
            lock=ObjectLock.for_retention(run.retention_policy, run.retention_days),
            work_dir=run.work_dir,
        )
        for name, copied in result.copied.items():
            self.log.info("%s: %d backup(s) copied %s", name, len(copied), [c["backup_id"] for c in copied])
        if result.failed:
            raise AirflowException(  # retried: the next try copies what is still missing
                "copies failed (the source copies are untouched):\n"
                + "\n".join(f"  {name}: {why}" for name, why in result.failed.items())
                + "\nFix the target(s) named above; the task's retry or the next run copies what is missing."
            )
        return result.to_dict()
