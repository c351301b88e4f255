"""Restore-drill DAGs: one per drill of a component (kind `restore-drill`)."""

from __future__ import annotations

from drflow.contracts.drills import DrillReportRun, RestoreDrillRun
from drflow.plan.common import common_fields, dag_id, datastore_params, drill_facts, objectives
from drflow.plan.drill_files import files_drill_plan
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.plan.snapshot import snapshot_drill_tasks
from drflow.spec.model import BackupPolicy, Component, Drill, Spec
from drflow.spec.types import airflow_schedule

KIND_RESTORE_DRILL = "restore-drill"


def drill_plan(spec: Spec, component: Component, drill: Drill, source: str) -> DagPlan:
    drilled = [p for p in component.backup_policies if drill.policy in (None, p.name)]
    if drilled and drilled[0].method == "snapshot" and (drill.policy or component.datastore is None):
        return snapshot_drill_plan(spec, component, drill, drilled[0], source)
    if component.postgres is None:  # a files or s3-prefix datastore
        return files_drill_plan(spec, component, drill, source, KIND_RESTORE_DRILL)
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
    report = TaskPlan(
        task_id="record_report",
        action="report.drill",
        doc="Write the drill report (restore time against the RTO, backup age against the RPO, validation "
        "results) to the store; fail if the drill missed an objective or a check.",
        params={
            "drill": DrillReportRun(
                spec_name=spec.metadata.name,
                component=component.name,
                target=target,
                facts=drill_facts(spec, component, drill.name),
            ).to_params()
        },
        upstream=("restore_and_validate",),
        retries=1,
    )
    doc = (
        f"# Restore drill `{drill.name}` of {component.title}\n\n{objectives(component)}\n\n"
        f"Restores the newest backup from `{target_name}` into a scratch PostgreSQL, runs "
        f"{len(drill.validation)} validation checks and records the measured restore time against the RTO.\n\n"
        f"Schedule `{drill.schedule}`. Spec: `{source}`."
    )
    return DagPlan(
        dag_id=dag_id(spec, component, "drill", drill.name),
        kind=KIND_RESTORE_DRILL,
        schedule=airflow_schedule(drill.schedule),
        description=f"restore drill of {component.title} ({drill.schedule})",
        doc_md=doc,
        tasks=(select, restore, report),
        params={
            "backup_id": {
                "default": None,
                "type": ["null", "string"],
                "title": "Backup id",
                "description": "Optional: backup to restore; empty means the newest complete one.",
            }
        },
        **common_fields(spec, component, source),
    )


def snapshot_drill_plan(spec: Spec, component: Component, drill: Drill, policy: BackupPolicy, source: str) -> DagPlan:
    """A drill of snapshot backups: create the volume or instance from the newest one, check it, delete it."""
    doc = (
        f"# Snapshot drill `{drill.name}` of {component.title}\n\n{objectives(component)}\n\n"
        f"Creates the volume or DB instance from the newest snapshot backup of `{policy.name}`, checks it becomes "
        f"available, deletes it and records the time against the RTO and the snapshot's age against the RPO."
        f"\n\nSchedule `{drill.schedule}`. Spec: `{source}`."
    )
    return DagPlan(
        dag_id=dag_id(spec, component, "drill", drill.name),
        kind=KIND_RESTORE_DRILL,
        schedule=airflow_schedule(drill.schedule),
        description=f"snapshot drill of {component.title} ({drill.schedule})",
        doc_md=doc,
        tasks=snapshot_drill_tasks(spec, component, policy, drill.name),
        **common_fields(spec, component, source),
    )
