"""Snapshot policies and drills (method `snapshot`): the plan builders of their tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drflow.contracts import SnapshotRun
from drflow.contracts.drills import SnapshotDrillRun
from drflow.plan.common import drill_facts, targets_params
from drflow.plan.graph import TaskPlan
from drflow.spec.model import BackupPolicy, Component, Spec

if TYPE_CHECKING:
    from drflow.plan.policy import PolicyContext


def copy_regions(spec: Spec, component: Component) -> tuple[str, ...]:
    """Where the snapshots are copied: copy_to, else every secondary region other than the source's."""
    source = component.snapshots
    assert source is not None, "checks reject snapshot policies on a component without snapshots"
    if source.copy_to is not None:
        return tuple(r for r in source.copy_to if r != source.region)
    return tuple(r.name for r in spec.regions if r.role == "secondary" and r.name != source.region)


def snapshot_run(spec: Spec, component: Component, policy: BackupPolicy) -> SnapshotRun:
    source = component.snapshots
    assert source is not None, "checks reject snapshot policies on a component without snapshots"
    return SnapshotRun(
        spec_name=spec.metadata.name,
        component=component.name,
        policy=policy.name,
        targets=tuple(targets_params(spec, policy.targets)),
        retention_days=policy.retention.days,
        retention_policy=policy.retention.policy,
        kind=source.kind,
        conn_id=source.conn_id,
        region=source.region,
        copy_to=copy_regions(spec, component),
        volume_id=source.ebs.volume_id if source.ebs else None,
        volume_tags=dict(source.ebs.tags) if source.ebs else {},
        db_instance=source.rds.db_instance if source.rds else None,
        instance_class=source.rds.instance_class if source.rds else "db.t3.micro",
        zone=source.availability_zone,
        poll_s=source.poll_interval.total_seconds(),
        timeout_s=source.wait_timeout.total_seconds(),
        work_dir=spec.defaults.work_dir,
    )


def snapshot_tasks(ctx: PolicyContext) -> tuple[TaskPlan, ...]:
    run = snapshot_run(ctx.spec, ctx.component, ctx.policy)
    what = (
        f"EBS volume {run.volume_id}"
        if run.volume_id
        else (f"EBS volumes tagged {dict(run.volume_tags)}" if run.kind == "ebs" else f"RDS instance {run.db_instance}")
    )
    copies = ", ".join(run.copy_to) or "no other region"
    take = ctx.task(
        "take_backup",
        "snapshot.backup",
        f"Snapshot the {what} in {run.region} (tagged with drflow's metadata), copy every snapshot to {copies} and "
        "wait until each is ready; record the snapshot ids per region, state, size and source in "
        + ", ".join(t["name"] for t in run.targets)
        + " (checksummed, manifest last). A retry finds its snapshots by their tags.",
        {"snapshot": run.to_params()},
    )
    verify = ctx.task(
        "verify_backup",
        "store.verify_backup",
        "Read the snapshot record back from every target and check its size and sha256.",
        {"spec_name": ctx.spec.metadata.name, "component": ctx.component.name, "targets": run.targets},
        "take_backup",
    )
    return (take, verify)


def snapshot_drill_tasks(spec: Spec, component: Component, policy: BackupPolicy, drill: str) -> tuple[TaskPlan, ...]:
    run = snapshot_run(spec, component, policy)
    region = run.copy_to[0] if run.copy_to else run.region
    facts = drill_facts(spec, component, drill)
    return (
        TaskPlan(
            task_id="restore_snapshot",
            action="snapshot.drill",
            doc=f"Create the {'volume(s)' if run.kind == 'ebs' else 'DB instance'} from the newest snapshot backup "
            f"of policy `{policy.name}` in {region}, check it becomes available within the RTO, then delete it; "
            "the drill report (time against the RTO, the snapshot's age against the RPO) goes to the store.",
            params={"drill": SnapshotDrillRun(snapshot=run, region=region, facts=facts).to_params()},
        ),
    )
