"""Tasks of an incremental (WAL) backup policy: check the source, archive the WAL, check the chain,
and, beside the archive, watch the replication slots the spec owns on the primary."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from drflow.plan.graph import TaskPlan
from drflow.spec.slots import slot_watch, wal_slot_name
from drflow.spec.types import format_size, schedule_interval

if TYPE_CHECKING:
    from drflow.plan.policy import PolicyContext


def wal_tasks(ctx: PolicyContext) -> tuple[TaskPlan, ...]:
    component, policy = ctx.component, ctx.policy
    base = ctx.datastore
    targets = ctx.targets
    slot = wal_slot_name(ctx.spec.metadata.name, component.name, policy.name, policy.slot)
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
        {"run": ctx.run(validation=False).to_params(), "pg_major": base["pg_major"], "slot": slot},
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
    return (check, archive, chain, _check_slots(ctx, slot))


def _check_slots(ctx: PolicyContext, slot: str) -> TaskPlan:
    """Beside the archive (never blocking it): the WAL the spec's slots on this primary hold back."""
    component = ctx.component
    assert component.postgres is not None
    limit = component.postgres.slot_retention_limit
    task = ctx.task(
        "check_slots",
        "postgres.check_slots",
        f"Read the replication slots on the primary (one read-only statement): fail when slot `{slot}` or another "
        f"WAL slot of this spec holds back more than {format_size(limit)} of WAL (datastore.slot_retention_limit) "
        "or is past max_slot_wal_keep_size, before pg_wal fills the disk; warn about orphans (a slot of this spec "
        "whose policy was removed, or an old-style `drflow_wal_<component>` slot) with the command that drops them. "
        "Runs beside archive_wal and never blocks it.",
        {
            "conn_id": component.postgres.primary.conn_id,
            "database": component.postgres.database,
            "spec_name": ctx.spec.metadata.name,
            "slot_watch": slot_watch(ctx.spec, component, ctx.source).to_params(),
        },
        "check_source",
    )
    # A slot that holds too much is not fixed by retrying the check; the next run is the retry.
    return dataclasses.replace(task, retries=0)
