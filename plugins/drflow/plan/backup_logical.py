"""Backup tasks of method pg_dump: check the database can be dumped, dump it into the store, verify."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drflow.plan.graph import TaskPlan

if TYPE_CHECKING:
    from drflow.plan.policy import PolicyContext


def logical_tasks(ctx: PolicyContext) -> tuple[TaskPlan, ...]:
    spec, component = ctx.spec, ctx.component
    base = ctx.datastore
    targets = ctx.targets
    check = ctx.task(
        "check_source",
        "postgres.check_dump_source",
        f"Connect to database `{base['database']}` on the primary; check its major version and that the "
        "spec's pg_dump can dump it.",
        {k: base[k] for k in ("conn_id", "database", "pg_major", "bin_dir")},
    )
    take = ctx.task(
        "take_backup",
        "postgres.logical_dump",
        f"`pg_dump -Fc` of database `{base['database']}` in a snapshot drflow exports (validation values read "
        "in the same snapshot) into " + ", ".join(t["name"] for t in targets) + "; the dump is checksummed and "
        "the manifest written last. One table of it restores with `drflow restore-table`.",
        {"run": ctx.run().to_params()},
        "check_source",
    )
    verify = ctx.task(
        "verify_backup",
        "store.verify_backup",
        "Read the dump back from every target and check its size and sha256.",
        {"spec_name": spec.metadata.name, "component": component.name, "targets": targets},
        "take_backup",
    )
    return (check, take, verify)
