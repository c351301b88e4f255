"""Tasks of an incremental (WAL) backup policy: check the source, archive the WAL, check the chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drflow.plan.graph import TaskPlan
from drflow.spec.types import schedule_interval

if TYPE_CHECKING:
    from drflow.plan.backup import PolicyContext


def wal_slot(component: str, slot: str | None) -> str:
    return slot or "drflow_wal_" + component.replace("-", "_")


def wal_tasks(ctx: PolicyContext) -> tuple[TaskPlan, ...]:
    component, policy = ctx.component, ctx.policy
    base = ctx.datastore
    targets = ctx.targets
    slot = wal_slot(component.name, policy.slot)
    store = {"spec_name": base["spec_name"], "component": component.name, "targets": targets}
    check = ctx.task(
        "check_source",
        "postgres.check_source",
        "Connect to the primary and check it is reachable, of the expected major version and allowed to "
        "stream WAL (REPLICATION).",
        {"conn_id": base["conn_id"], "database": base["database"], "pg_major": base["pg_major"]},
    )
    archive = ctx.task(
        "archive_wal",
        "postgres.wal_archive",
        f"Switch to a new WAL segment and pull every segment since the previous entry with `pg_receivewal` "
        f"(replication slot `{slot}` keeps them until stored), {policy.compression}-compress them into "
        + ", ".join(t["name"] for t in targets)
        + " as one catalog entry (manifest last), then advance the slot.",
        {
            **base,
            "policy": policy.name,
            "targets": targets,
            "slot": slot,
            "compression": policy.compression,
            "retention_days": policy.retention.days,
            "retention_policy": policy.retention.policy,
            "work_dir": ctx.spec.defaults.work_dir,
        },
        "check_source",
    )
    chain = ctx.task(
        "check_wal_chain",
        "store.check_wal_chain",
        "Check in every target that the stored WAL chains without a gap from a full backup; fail with the "
        "missing LSN range otherwise. Logs the recoverable range and the archive's freshness against the RPO.",
        {
            **store,
            "expected_interval_s": int(schedule_interval(policy.schedule).total_seconds()),
            "rpo_s": int(component.rpo.total_seconds()),
        },
        "archive_wal",
    )
    return (check, archive, chain)
