"""Which Celery queue each task goes to: the spec's `queue` and `datastore_queue` settings, most specific first.

A policy's, drill's or recovery plan's `queue` sends every task of its DAG there. Otherwise a task that must
run near a datastore (it streams from the database, runs a tool on its host, or acts on a node: the actions of
:data:`DATASTORE_ACTIONS`) takes the first of its component's `datastore_queue`, its component's `queue`,
`defaults.datastore_queue` and `defaults.queue`; any other task the first of its component's `queue` and
`defaults.queue`. None leaves the task on Airflow's `[operators] default_queue`. A task's component is the one
its step or retention run names, else its DAG's.
"""

from __future__ import annotations

from dataclasses import replace

from drflow.plan.graph import DagPlan, TaskPlan
from drflow.spec.model import Component, Spec

DATASTORE_ACTIONS = frozenset(
    {
        "postgres.check_source",
        "postgres.full_backup",
        "postgres.wal_archive",
        "postgres.check_slots",
        "postgres.check_dump_source",
        "postgres.logical_dump",
        "postgres.replication_lag",
        "pgbackrest.check",
        "pgbackrest.backup",
        "pgbackrest.verify",
        "files.backup",
        "plan.assess",
        "plan.gate_lag",
        "plan.fence",
        "plan.promote",
        "plan.rebuild_replica",
        "plan.validate_sql",
    }
)
"""Actions that talk to a datastore's nodes or run on its hosts (pg_basebackup, pg_receivewal, pgBackRest, tar
of a file tree, failover steps). Store-only work (verify, copy, select, drills' scratch restores) is not here."""


def near_datastore(task: TaskPlan) -> bool:
    step = task.params.get("step")
    if task.action == "plan.validate_sql" and isinstance(step, dict) and step.get("node") == "restored":
        return False  # it checks the server a restore step started on its own worker: go where that one went
    if task.action in DATASTORE_ACTIONS:
        return True
    # Retention of a pgBackRest component runs `pgbackrest expire` on the database host.
    retention = task.params.get("retention")
    return task.action == "store.expire" and isinstance(retention, dict) and bool(retention.get("pgbackrest"))


def task_queue(spec: Spec, component: Component | None, task: TaskPlan, explicit: str | None = None) -> str | None:
    """The queue of one task (None: Airflow's default queue); see the module docstring for the order."""
    if explicit is not None:
        return explicit
    near = near_datastore(task)
    defaults = spec.defaults
    candidates = [
        component.datastore_queue if component is not None and near else None,
        component.queue if component is not None else None,
        defaults.datastore_queue if near else None,
        defaults.queue,
    ]
    return next((queue for queue in candidates if queue is not None), None)


def route(plan: DagPlan, spec: Spec, explicit: str | None = None) -> DagPlan:
    """The plan with every task's queue set (`explicit`: the policy's, drill's or recovery plan's `queue`)."""
    queues = [task_queue(spec, _component_of(spec, plan, task), task, explicit) for task in plan.tasks]
    if all(queue == task.queue for queue, task in zip(queues, plan.tasks, strict=True)):
        return plan  # nothing to set: most specs name no queue, and copying every task costs parse time
    tasks = tuple(replace(task, queue=queue) for queue, task in zip(queues, plan.tasks, strict=True))
    return replace(plan, tasks=tasks)


def _component_of(spec: Spec, plan: DagPlan, task: TaskPlan) -> Component | None:
    named = None
    for key in ("step", "retention"):
        value = task.params.get(key)
        if isinstance(value, dict) and isinstance(value.get("component"), str):
            named = value["component"]
            break
    name = named or plan.component
    if name is None:
        return None
    try:
        return spec.component(name)
    except KeyError:
        return None
