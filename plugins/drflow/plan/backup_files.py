"""Backup tasks of method files: back up the files or s3-prefix datastore at the policy's level, verify."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drflow.contracts import FilesBackupRun
from drflow.plan.graph import TaskPlan

if TYPE_CHECKING:
    from drflow.plan.policy import PolicyContext


def files_run(ctx: PolicyContext) -> FilesBackupRun:
    assert ctx.component.datastore is not None, "checks reject backups on a component without a datastore"
    return FilesBackupRun(
        spec_name=ctx.spec.metadata.name,
        component=ctx.component.name,
        policy=ctx.policy.name,
        level=ctx.policy.type,
        datastore=ctx.component.datastore.model_dump(mode="json"),
        targets=tuple(ctx.targets),
        retention_days=ctx.policy.retention.days,
        retention_policy=ctx.policy.retention.policy,
        work_dir=ctx.spec.defaults.work_dir,
    )


def files_tasks(ctx: PolicyContext) -> tuple[TaskPlan, ...]:
    spec, component, policy = ctx.spec, ctx.component, ctx.policy
    targets = ctx.targets
    tool = (
        "GNU tar `--listed-incremental` + zstd (the snapshot file stored with the entry)"
        if component.datastore is not None and component.datastore.type == "files"
        else "a copy of every object whose ETag or size changed, plus a listing of the prefix"
    )
    since = {"full": "", "incremental": " since the previous file backup", "differential": " since the last full"}
    take = ctx.task(
        "take_backup",
        "files.backup",
        f"{policy.type.capitalize()} backup{since[policy.type]}: {tool}, into "
        + ", ".join(t["name"] for t in targets)
        + "; every object checksummed, the manifest written last. An incremental or differential with no "
        "restorable chain to build on is taken as a full.",
        {"run": files_run(ctx).to_params()},
    )
    verify = ctx.task(
        "verify_backup",
        "store.verify_backup",
        "Read the new backup back from every target and check every object's size and sha256.",
        {"spec_name": spec.metadata.name, "component": component.name, "targets": targets},
        "take_backup",
    )
    return (take, verify)
