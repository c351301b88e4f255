"""What a backup method's task builder is given: the policy it backs up, in its spec and component."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drflow.plan.common import datastore_params, targets_params
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
