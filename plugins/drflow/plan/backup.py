"""Backup DAGs: one per backup policy of a component (kind `backup`)."""

from __future__ import annotations

from datetime import timedelta

from drflow.plan.backup_files import files_tasks
from drflow.plan.backup_logical import logical_tasks
from drflow.plan.backup_pgbackrest import pgbackrest_tasks
from drflow.plan.common import common_fields, dag_id, objectives
from drflow.plan.copy import copy_task
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.plan.policy import PolicyContext, TaskBuilder
from drflow.plan.snapshot import snapshot_tasks
from drflow.plan.wal import wal_tasks
from drflow.spec.model import BackupPolicy, Component, Spec
from drflow.spec.types import airflow_schedule, format_duration

KIND_BACKUP = "backup"


def basebackup_tasks(ctx: PolicyContext) -> tuple[TaskPlan, ...]:
    spec, component, policy = ctx.spec, ctx.component, ctx.policy
    base = ctx.datastore
    targets = ctx.targets
    retries, retry_delay = ctx.retries, timedelta(seconds=ctx.retry_delay_s)
    run = ctx.run()
    source = f"replica {run.standby.name}" if run.standby is not None else "the primary"
    check = TaskPlan(
        task_id="check_source",
        action="postgres.check_source",
        doc=f"Connect to {source} and check it is reachable, of the expected major version and allowed "
        "to stream a base backup.",
        params={
            "conn_id": run.standby.conn_id if run.standby is not None else base["conn_id"],
            "database": base["database"],
            "pg_major": base["pg_major"],
        },
        retries=retries,
        retry_delay_s=int(retry_delay.total_seconds()),
    )
    take = TaskPlan(
        task_id="take_backup",
        action="postgres.full_backup",
        doc=f"`pg_basebackup` of {source} ({policy.compression}, WAL included) into "
        + ", ".join(t["name"] for t in targets)
        + "; every object checksummed; the manifest is written last."
        + (
            f" Refused while {source} lags more than the RPO ({format_duration(component.rpo)}) behind the primary."
            if run.standby is not None
            else ""
        ),
        params={"run": run.to_params(), "pg_major": base["pg_major"]},
        upstream=("check_source",),
        retries=retries,
        retry_delay_s=int(retry_delay.total_seconds()),
        timeout_s=int(policy.timeout.total_seconds()) if policy.timeout else None,
    )
    verify = TaskPlan(
        task_id="verify_backup",
        action="store.verify_backup",
        doc="Read the new backup back from every target and check every object's size and sha256.",
        params={"spec_name": spec.metadata.name, "component": component.name, "targets": targets},
        upstream=("take_backup",),
        retries=retries,
        retry_delay_s=int(retry_delay.total_seconds()),
    )
    return (check, take, verify)


# One task builder per backup method; methods of later issues register here.
TASK_BUILDERS: dict[str, TaskBuilder] = {
    "pg_basebackup": basebackup_tasks,
    "pg_receivewal": wal_tasks,
    "pgbackrest": pgbackrest_tasks,
    "pg_dump": logical_tasks,
    "snapshot": snapshot_tasks,
    "files": files_tasks,
}


def backup_plan(spec: Spec, component: Component, policy: BackupPolicy, source: str) -> DagPlan:
    retries = policy.retries if policy.retries is not None else spec.defaults.retries
    retry_delay = policy.retry_delay or spec.defaults.retry_delay
    ctx = PolicyContext(spec, component, policy, retries, int(retry_delay.total_seconds()), source)
    tasks = TASK_BUILDERS[policy.method](ctx)
    if policy.copy_to:
        tasks = (*tasks, copy_task(ctx, tasks[-1].task_id))
    doc = (
        f"# Backup `{policy.name}` of {component.title}\n\n{objectives(component)}\n\n"
        f"- type `{policy.type}`, method `{policy.method}`, schedule `{policy.schedule}`\n"
        f"- targets: {', '.join(policy.targets)}; retention {policy.retention.days} days "
        f"({policy.retention.policy})\n\n"
        f"Spec: `{source}`. Restore without Airflow: "
        f"`drflow restore --spec {source} --component {component.name} "
        + ("--to REGION [--zone AZ]`." if policy.method == "snapshot" else "--to DIR`.")
    )
    return DagPlan(
        dag_id=dag_id(spec, component, "backup", policy.name),
        kind=KIND_BACKUP,
        schedule=airflow_schedule(policy.schedule),
        description=f"{policy.type} backup of {component.title} ({policy.schedule})",
        doc_md=doc,
        tasks=tasks,
        **{
            **common_fields(spec, component, source),
            "retries": retries,
            "retry_delay_s": int(retry_delay.total_seconds()),
        },
    )
