"""Restore-drill DAGs of files and s3-prefix components: replay the chain into scratch, compare, report."""

from __future__ import annotations

from drflow.contracts.drills import FilesDrillRun
from drflow.plan.drill_common import KIND_RESTORE_DRILL, drill_dag, drill_report_task
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.spec.model import Component, Drill, Spec


def files_drill_plan(spec: Spec, component: Component, drill: Drill, source: str) -> DagPlan:
    policies = [p for p in component.backup_policies if drill.policy in (None, p.name)]
    first = drill.target or policies[0].targets[0]
    names = dict.fromkeys([first, *(name for p in policies for name in p.targets)])
    targets = [spec.target(name).model_dump(mode="json") for name in names]
    restore = TaskPlan(
        task_id="restore_and_validate",
        action="files.restore_drill",
        doc="Fetch the newest file backup's chain (or the one given in the trigger form), every object's sha256 "
        "checked, replay it into a scratch directory and compare the tree with the digest recorded at backup time "
        "(an S3 prefix: the objects and bytes of its listing); the scratch directory is always removed.",
        params={
            "drill": FilesDrillRun(
                spec_name=spec.metadata.name,
                component=component.name,
                targets=tuple(targets),
                work_dir=spec.defaults.work_dir,
            ).to_params()
        },
        timeout_s=int(drill.timeout.total_seconds()) if drill.timeout else None,
    )
    report = drill_report_task(spec, component, drill, targets[0], checked="the tree check", failed="the check")
    doc = (
        f"Replays the newest file backup's chain from `{first}` (other targets when a link is missing there) "
        "into scratch, compares it with the tree recorded at backup time and records the restore time against "
        "the RTO."
    )
    return drill_dag(
        spec,
        component,
        drill,
        source,
        kind=KIND_RESTORE_DRILL,
        what="restore",
        doc=doc,
        tasks=(restore, report),
        backup_id="Optional: file backup to restore; empty means the newest.",
    )
