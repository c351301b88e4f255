"""Restore-drill DAGs of files and s3-prefix components: replay the chain into scratch, compare, report."""

from __future__ import annotations

from drflow.contracts.drills import DrillReportRun, FilesDrillRun
from drflow.plan.common import common_fields, dag_id, drill_facts, objectives
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.spec.model import Component, Drill, Spec
from drflow.spec.types import airflow_schedule


def files_drill_plan(spec: Spec, component: Component, drill: Drill, source: str, kind: str) -> DagPlan:
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
    report = TaskPlan(
        task_id="record_report",
        action="report.drill",
        doc="Write the drill report (restore time against the RTO, backup age against the RPO, the tree check) to "
        "the store; fail if the drill missed an objective or the check.",
        params={
            "drill": DrillReportRun(
                spec_name=spec.metadata.name,
                component=component.name,
                target=targets[0],
                facts=drill_facts(spec, component, drill.name),
            ).to_params()
        },
        upstream=("restore_and_validate",),
        retries=1,
    )
    doc = (
        f"# Restore drill `{drill.name}` of {component.title}\n\n{objectives(component)}\n\n"
        f"Replays the newest file backup's chain from `{first}` (other targets when a link is missing there) "
        "into scratch, compares it with the tree recorded at backup time and records the restore time against "
        f"the RTO.\n\nSchedule `{drill.schedule}`. Spec: `{source}`."
    )
    return DagPlan(
        dag_id=dag_id(spec, component, "drill", drill.name),
        kind=kind,
        schedule=airflow_schedule(drill.schedule),
        description=f"restore drill of {component.title} ({drill.schedule})",
        doc_md=doc,
        tasks=(restore, report),
        params={
            "backup_id": {
                "default": None,
                "type": ["null", "string"],
                "title": "Backup id",
                "description": "Optional: file backup to restore; empty means the newest.",
            }
        },
        **common_fields(spec, component, source),
    )
