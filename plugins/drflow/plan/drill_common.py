"""What every restore-drill DAG has alike: its report task and the DAG around its tasks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drflow.contracts.drills import DrillReportRun
from drflow.plan.common import backup_id_param, common_fields, dag_id, drill_facts, objectives
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.spec.model import Component, Drill, Spec
from drflow.spec.types import airflow_schedule

KIND_RESTORE_DRILL = "restore-drill"


def drill_report_task(
    spec: Spec, component: Component, drill: Drill, target: Mapping[str, Any], *, checked: str, failed: str
) -> TaskPlan:
    """``record_report`` after ``restore_and_validate``: ``checked`` names what the report holds besides the
    times, ``failed`` what fails the drill besides a missed objective."""
    return TaskPlan(
        task_id="record_report",
        action="report.drill",
        doc=f"Write the drill report (restore time against the RTO, backup age against the RPO, {checked}) to the "
        f"store; fail if the drill missed an objective or {failed}.",
        params={
            "drill": DrillReportRun(
                spec_name=spec.metadata.name,
                component=component.name,
                target=dict(target),
                facts=drill_facts(spec, component, drill.name),
            ).to_params()
        },
        upstream=("restore_and_validate",),
        retries=1,
    )


def drill_dag(
    spec: Spec,
    component: Component,
    drill: Drill,
    source: str,
    *,
    kind: str,
    what: str,
    doc: str,
    tasks: tuple[TaskPlan, ...],
    backup_id: str | None = None,
) -> DagPlan:
    """The DAG of ``drill`` on its schedule; ``what``: the kind of drill (restore, snapshot); ``doc``: what it
    does, in its docs between the title and objectives and the schedule; ``backup_id``: the trigger form's backup
    id field's description (None: no such field)."""
    return DagPlan(
        dag_id=dag_id(spec, component, "drill", drill.name),
        kind=kind,
        schedule=airflow_schedule(drill.schedule),
        description=f"{what} drill of {component.title} ({drill.schedule})",
        doc_md=f"# {what.capitalize()} drill `{drill.name}` of {component.title}\n\n{objectives(component)}\n\n"
        f"{doc}\n\nSchedule `{drill.schedule}`. Spec: `{source}`.",
        tasks=tasks,
        params={} if backup_id is None else {"backup_id": backup_id_param(backup_id)},
        **common_fields(spec, component, source),
    )
