"""Restore-drill DAGs: one per drill of a component (kind `restore-drill`)."""

from __future__ import annotations

from drflow.contracts.drills import RestoreDrillRun
from drflow.plan.common import datastore_params
from drflow.plan.drill_common import KIND_RESTORE_DRILL, drill_dag, drill_report_task
from drflow.plan.drill_files import files_drill_plan
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.plan.snapshot import snapshot_drill_tasks
from drflow.spec.model import BackupPolicy, Component, Drill, Spec


def drill_plan(spec: Spec, component: Component, drill: Drill, source: str) -> DagPlan:
    drilled = [p for p in component.backup_policies if drill.policy in (None, p.name)]
    if drilled and drilled[0].method == "snapshot" and (drill.policy or component.datastore is None):
        return snapshot_drill_plan(spec, component, drill, drilled[0], source)
    if component.postgres is None:  # a files or s3-prefix datastore
        return files_drill_plan(spec, component, drill, source)
    base = datastore_params(spec, component)
    policy_name = drill.policy
    target_name = drill.target
    if target_name is None:
        policies = [p for p in component.backup_policies if policy_name in (None, p.name)]
        target_name = policies[0].targets[0]
    target = spec.target(target_name).model_dump(mode="json")
    store_params = {"spec_name": spec.metadata.name, "component": component.name, "target": target}
    # The same backup in the policies' other targets, used when the drill target's copy is corrupt or unreachable.
    others = [
        name
        for p in component.backup_policies
        if policy_name in (None, p.name)
        for name in p.targets
        if name != target_name
    ]
    fallback = [spec.target(name).model_dump(mode="json") for name in dict.fromkeys(others)]
    select = TaskPlan(
        task_id="select_backup",
        action="store.select_backup",
        doc="Pick the newest complete backup"
        + (f" of policy `{policy_name}`" if policy_name else "")
        + f" in `{target_name}` (or the one given in the trigger form).",
        params={**store_params, "policy": policy_name, "fallback_targets": fallback},
    )
    restore_run = RestoreDrillRun(
        spec_name=spec.metadata.name,
        component=component.name,
        target=target,
        fallback_targets=tuple(fallback),
        database=base["database"],
        bin_dir=base["bin_dir"],
        validation=tuple(v.model_dump(mode="json") for v in drill.validation),
        work_dir=spec.defaults.work_dir,
    )
    restore = TaskPlan(
        task_id="restore_and_validate",
        action="postgres.restore_drill",
        doc="Verify checksums, restore into a scratch instance on a free port, start it, run the validation "
        "queries and the validation suite's checks and compare them with the values recorded at backup time; "
        "the scratch instance is always torn down.",
        params={"drill": restore_run.to_params()},
        upstream=("select_backup",),
        timeout_s=int(drill.timeout.total_seconds()) if drill.timeout else None,
    )
    report = drill_report_task(spec, component, drill, target, checked="validation results", failed="a check")
    doc = (
        f"Restores the newest backup from `{target_name}` into a scratch PostgreSQL, runs "
        f"{len(drill.validation)} validation checks and records the measured restore time against the RTO."
    )
    return drill_dag(
        spec,
        component,
        drill,
        source,
        kind=KIND_RESTORE_DRILL,
        what="restore",
        doc=doc,
        tasks=(select, restore, report),
        backup_id="Optional: backup to restore; empty means the newest complete one.",
    )


def snapshot_drill_plan(spec: Spec, component: Component, drill: Drill, policy: BackupPolicy, source: str) -> DagPlan:
    """A drill of snapshot backups: create the volume or instance from the newest one, check it, delete it."""
    doc = (
        f"Creates the volume or DB instance from the newest snapshot backup of `{policy.name}`, checks it becomes "
        f"available, deletes it and records the time against the RTO and the snapshot's age against the RPO."
    )
    return drill_dag(
        spec,
        component,
        drill,
        source,
        kind=KIND_RESTORE_DRILL,
        what="snapshot",
        doc=doc,
        tasks=snapshot_drill_tasks(spec, component, policy, drill.name),
    )
