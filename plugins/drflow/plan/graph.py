"""The plan graph: what DAGs and tasks a spec produces, as plain data, without Airflow.

Builders turn a validated spec into DagPlans; renderers turn DagPlans into Airflow DAGs, runbooks
or JSON. Everything here is JSON-serialisable so `drflow plan` can diff two versions of a spec.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TaskPlan:
    task_id: str
    action: str
    """Which operator runs the task (a key of the renderer's action table)."""
    doc: str
    params: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the action: plain JSON values, never secrets, never live connections."""
    upstream: tuple[str, ...] = ()
    retries: int | None = None
    retry_delay_s: int | None = None
    timeout_s: int | None = None
    trigger_rule: str = "all_success"


@dataclass(frozen=True)
class DagPlan:
    dag_id: str
    kind: str
    spec: str
    source: str
    component: str | None
    criticality: str | None
    schedule: str | None
    description: str
    doc_md: str
    owner: str
    retries: int
    retry_delay_s: int
    tasks: tuple[TaskPlan, ...]
    max_active_runs: int = 1
    schedule_every_s: int | None = None
    """A fixed interval instead of a cron schedule (replication watch every 30s, say)."""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Trigger-form parameters: name -> {default, type, description, ...}."""
    error: str | None = None
    """Set on the placeholder DAG of a spec that does not validate."""

    @property
    def tags(self) -> list[str]:
        tags = ["drflow", f"kind:{self.kind}", f"spec:{self.spec}"]
        if self.component:
            tags.append(f"component:{self.component}")
        if self.criticality:
            tags.append(f"criticality:{self.criticality}")
        return tags

    def task(self, task_id: str) -> TaskPlan:
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        raise KeyError(task_id)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = self.tags
        return data
