"""What a backup method's task builder is given: the policy it backs up, in its spec and component."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drflow.contracts import BackupRun
from drflow.engines.postgres.bindir import datastore_bin_dir
from drflow.plan.common import datastore_params, targets_params, validation_queries
from drflow.plan.graph import TaskPlan
from drflow.spec.model import BackupPolicy, Component, Spec


@dataclass(frozen=True)
class PolicyContext:
    """What a method's task builder needs to know about the policy it backs up."""

    spec: Spec
    component: Component
    policy: BackupPolicy
    retries: int
    retry_delay_s: int
    source: str = ""
    """The spec file, for commands a task's messages suggest."""

    @property
    def targets(self) -> list[dict[str, Any]]:
        return targets_params(self.spec, self.policy.targets)

    @property
    def datastore(self) -> dict[str, Any]:
        return datastore_params(self.spec, self.component)

    def run(self, *, validation: bool = True) -> BackupRun:
        """What the policy's backup task of every method is given (``run=``)."""
        datastore = self.component.postgres
        assert datastore is not None, "checks reject backups on a component without a datastore"
        policy = self.policy
        return BackupRun(
            spec_name=self.spec.metadata.name,
            component=self.component.name,
            policy=policy.name,
            conn_id=datastore.primary.conn_id,
            database=datastore.database,
            bin_dir=str(datastore_bin_dir(datastore.bin_dir, datastore.version)),
            targets=tuple(self.targets),
            compression=policy.compression,
            retention_days=policy.retention.days,
            retention_policy=policy.retention.policy,
            validation=tuple(validation_queries(self.component, self.spec)) if validation else (),
            work_dir=self.spec.defaults.work_dir,
        )

    def task(self, task_id: str, action: str, doc: str, params: dict[str, Any], *upstream: str) -> TaskPlan:
        return TaskPlan(
            task_id=task_id,
            action=action,
            doc=doc,
            params=params,
            upstream=upstream,
            retries=self.retries,
            retry_delay_s=self.retry_delay_s,
            timeout_s=int(self.policy.timeout.total_seconds()) if self.policy.timeout else None,
        )


TaskBuilder = Callable[[PolicyContext], tuple[TaskPlan, ...]]
