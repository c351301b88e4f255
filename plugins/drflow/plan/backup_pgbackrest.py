"""Backup tasks of method pgbackrest: check the stanza, back up into every target's repository, verify."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drflow.engines.postgres.pgbackrest_config import stanza_settings
from drflow.plan.graph import TaskPlan

if TYPE_CHECKING:
    from drflow.plan.policy import PolicyContext


def pgbackrest_tasks(ctx: PolicyContext) -> tuple[TaskPlan, ...]:
    spec, component, policy = ctx.spec, ctx.component, ctx.policy
    base = ctx.datastore
    settings = stanza_settings(spec, component)
    stanza = {
        "spec_name": spec.metadata.name,
        "component": component.name,
        "conn_id": base["conn_id"],
        "database": base["database"],
        "pgbackrest": settings.to_params(),
        "work_dir": spec.defaults.work_dir,
    }
    repos = ", ".join(f"repo{settings.repo(name).index} ({name})" for name in policy.targets)
    check = ctx.task(
        "check_source",
        "pgbackrest.check",
        f"Create stanza `{settings.stanza}` where missing, then `pgbackrest check`: the primary is reachable "
        "on its host and its archive_command gets WAL into every repository.",
        stanza,
    )
    backup = ctx.task(
        "pgbackrest_backup",
        "pgbackrest.backup",
        f"`pgbackrest backup --type {policy.type}` into {repos}"
        + (
            f", copying the files of replica {policy.from_node} (backup-standby; refused while it lags more than "
            "the RPO)"
            if policy.from_node
            else ""
        )
        + "; each backup carries the run's backup id as an annotation (a retry never backs up twice) and is "
        "recorded in the target's drflow catalog.",
        {"run": ctx.run().to_params(), "pgbackrest": stanza["pgbackrest"], "backup_type": policy.type},
        "check_source",
    )
    verify = ctx.task(
        "pgbackrest_verify",
        "pgbackrest.verify",
        "`pgbackrest verify` of every repository the backup went to, the backup listed without errors in "
        "`pgbackrest info`, and the catalog record's checksum.",
        {**stanza, "targets": ctx.targets},
        "pgbackrest_backup",
    )
    return (check, backup, verify)
