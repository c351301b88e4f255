"""The copy task of a backup DAG whose policy has ``copy_to`` targets: after verify, fill them from ``targets``."""

from __future__ import annotations

from drflow.contracts import CopyRun
from drflow.plan.common import targets_params
from drflow.plan.graph import TaskPlan
from drflow.plan.policy import PolicyContext


def copy_task(ctx: PolicyContext, after: str) -> TaskPlan:
    policy = ctx.policy
    return ctx.task(
        "copy_backup",
        "store.copy_backup",
        f"Copy every verified backup of `{policy.name}` that {', '.join(policy.copy_to)} lack from "
        f"{', '.join(policy.targets)}; check every object's sha256 at the destination; record the copy lag. "
        "A failed copy never touches the source copies.",
        {
            "copy": CopyRun(
                spec_name=ctx.spec.metadata.name,
                component=ctx.component.name,
                policy=policy.name,
                sources=tuple(ctx.targets),
                destinations=tuple(targets_params(ctx.spec, policy.copy_to)),
                retention_days=policy.retention.days,
                retention_policy=policy.retention.policy,
                work_dir=ctx.spec.defaults.work_dir,
            ).to_params()
        },
        after,
    )
