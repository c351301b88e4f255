"""The copy operator: fill a policy's copy targets (secondary region, offline) from its verified backups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator

from drflow.retention import RETENTION_POLICIES, RetentionPolicy


class CopyBackupOperator(BaseOperator):
    """Copy every entry of the policy that a copy target lacks, each destination on its own; fail naming the failed."""

    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        spec_name: str,
        component: str,
        policy: str,
        sources: Sequence[Mapping[str, Any]],
        destinations: Sequence[Mapping[str, Any]],
        retention_days: int,
        retention_policy: str,
        work_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if retention_policy not in RETENTION_POLICIES:
            raise ValueError(f"retention_policy {retention_policy!r} is not one of {', '.join(RETENTION_POLICIES)}")
        self.spec_name = spec_name
        self.component = component
        self.policy = policy
        self.sources = [dict(t) for t in sources]
        self.destinations = [dict(t) for t in destinations]
        self.retention_days = int(retention_days)
        self.retention_policy: RetentionPolicy = retention_policy  # type: ignore[assignment]
        self.work_dir = work_dir

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException

        from drflow.jobs.copy import copy_backups
        from drflow.store.lock import ObjectLock

        result = copy_backups(
            self.spec_name,
            self.component,
            self.policy,
            self.sources,
            self.destinations,
            lock=ObjectLock.for_retention(self.retention_policy, self.retention_days),
            work_dir=self.work_dir,
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
