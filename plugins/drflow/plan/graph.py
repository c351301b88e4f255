"""The plan graph: what DAGs and tasks a spec produces, as plain data, without Airflow.

Builders turn a validated spec into DagPlans; renderers turn DagPlans into Airflow DAGs, runbooks
or JSON. Everything here is JSON-serialisable so `drflow plan` can diff two versions of a spec.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MANAGED_BY_TAG = "managed-by:drflow"
"""On every DAG drflow renders (it sorts after `component:` and `kind:`, which Airflow shows first)."""


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
    teardown: bool = False
    """Runs whatever happened upstream and does not decide the DAG run's state (a recovery record)."""
    notify_on: dict[str, str] = field(default_factory=dict)
    """Task callback → notification event, e.g. {"failure": "step-failed"}; channels from DagPlan.notify."""
    queue: str | None = None
    """The Celery queue of the task (plan/queues.py); None: Airflow's default queue."""


@dataclass(frozen=True)
class AssetWatch:
    """Schedule a DAG on an asset that a triggerer's event trigger updates (event-driven scheduling)."""

    asset: str
    trigger: str
    """Import path of a BaseEventTrigger subclass."""
    kwargs: dict[str, Any] = field(default_factory=dict)


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
    extra_tags: tuple[str, ...] = ()
    """Tags after the standard ones: `scenario:…`, one `component:…` per affected component, `status:…`."""
    deadline_s: int | None = None
    """A deadline alert this long after the run is queued (a recovery plan's RTO)."""
    notify: dict[str, Any] | None = None
    """Plan facts for notifications (channels, plan name …): what tasks' `notify_on` and the deadline send."""
    paused: bool | None = None
    """Paused when Airflow first sees the DAG (None: Airflow's default)."""
    watch: AssetWatch | None = None
    """Scheduled on this watched asset instead of `schedule`."""
    display_name: str | None = None
    """What the Airflow UI shows and searches (from the start): `User Database · backup daily-full`."""
    skip_missed_slot: bool = False
    """The first run is the next slot, never one that passed before the DAG appeared or was unpaused (Airflow
    runs a slot missed by under a tenth of the interval). Exercises: people would be asked at once, unannounced,
    and a triggered run would queue behind the missed one."""

    @property
    def tags(self) -> list[str]:
        """Airflow lists tags alphabetically and shows the first three: `component:` and `kind:` sort first."""
        tags = [f"component:{self.component}"] if self.component else []
        tags.extend(tag for tag in self.extra_tags if tag.startswith("component:") and tag not in tags)
        tags += [f"kind:{self.kind}", MANAGED_BY_TAG, f"spec:{self.spec}"]
        if self.criticality:
            tags.append(f"priority:{self.criticality}")
        tags.extend(tag for tag in self.extra_tags if tag not in tags)
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
