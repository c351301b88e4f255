"""A validated spec → its DagPlans; each DAG kind has its own builder module."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from drflow.plan.backup import backup_plan
from drflow.plan.config import config_plans
from drflow.plan.drill import drill_plan
from drflow.plan.exercise import exercise_plans
from drflow.plan.exercise_common import exercise_dag_id
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.plan.metrics import metrics_plan
from drflow.plan.presentation import plan_title, presented
from drflow.plan.queues import route
from drflow.plan.recovery import plan_graph, recovery_plan
from drflow.plan.replication import replication_watch_plan
from drflow.plan.report import rpo_report_plan
from drflow.plan.restore import restore_plan
from drflow.plan.retention import retention_plan
from drflow.plan.simulation import simulation_plan
from drflow.spec.model import Spec

KIND_SPEC_ERROR = "spec-error"


def build_plans(spec: Spec, source: Path | str) -> list[DagPlan]:
    """Every DAG of a spec, in a stable order: per component its backups, drills and watches, then reports."""
    plans: list[DagPlan] = []
    where = str(source)
    for component in spec.components:
        for policy in component.backup_policies:
            plan = backup_plan(spec, component, policy, where)
            plans.append(route(presented(plan, spec, component, policy), spec, policy.queue))
        for drill in component.drills:
            plan = drill_plan(spec, component, drill, where)
            plans.append(route(presented(plan, spec, component, drill), spec, drill.queue))
        whole = [replication_watch_plan(spec, component, where), restore_plan(spec, component, where)]
        whole += config_plans(spec, component, where)
        plans.extend(route(presented(p, spec, component), spec) for p in whole if p)
    # Each plan's task graph is built once: its DAG and its exercises start from it.
    graphs = {plan.name: plan_graph(spec, plan, where) for plan in spec.recovery_plans}
    plans.extend(
        route(presented(recovery_plan(spec, plan, where, graphs[plan.name]), spec), spec, plan.queue)
        for plan in spec.recovery_plans
    )
    # A draft can be simulated before it is approved: a simulation touches nothing in production.
    simulations = [
        replace(simulation_plan(spec, plan, where), display_name=f"{plan_title(plan.name)} (simulation)")
        for plan in spec.recovery_plans
        if plan.status != "retired"
    ]
    exercises = exercise_plans(spec, where, graphs) + [
        simulation_plan(
            spec,
            spec.recovery_plan(exercise.plan),
            where,
            schedule=exercise.effective_schedule,
            exercise=exercise.name,
            dag_id=exercise_dag_id(spec, exercise),
            paused=exercise.effective_paused,
        )
        for exercise in spec.exercises
        if exercise.type == "simulation"
    ]
    titles = {exercise_dag_id(spec, e): f"{plan_title(e.plan)} ({e.type} exercise {e.name})" for e in spec.exercises}
    exercises = [replace(p, display_name=p.display_name or titles.get(p.dag_id)) for p in exercises]
    reports = [rpo_report_plan(spec, where), metrics_plan(spec, where), retention_plan(spec, where)]
    plans.extend(route(presented(p, spec), spec) for p in [*simulations, *exercises, *reports] if p)
    return plans


def failed_plan(plan: DagPlan, reason: str) -> DagPlan:
    """The same DAG id, but a single failing task explaining why drflow could not build the DAG."""
    message = (
        f"{plan.source}: drflow could not build DAG {plan.dag_id}: {reason}; "
        "this is a drflow defect or a spec feature this version cannot run yet: report it with this message"
    )
    placeholder = error_plan(plan.source, [message])
    name = f"{plan.display_name or plan.dag_id} · CANNOT BUILD"
    return replace(
        placeholder, dag_id=plan.dag_id, spec=plan.spec, component=plan.component, kind=plan.kind, display_name=name
    )


def error_plan(source: Path | str, errors: list[str]) -> DagPlan:
    """A placeholder DAG that shows a broken spec in the Airflow UI instead of hiding it in a log."""
    stem = re.sub(r"[^a-z0-9-]+", "-", Path(source).stem.lower()).strip("-") or "spec"
    listing = "\n".join(f"- `{line}`" for line in errors)
    doc = (
        f"# Spec `{source}` does not validate\n\n"
        "None of this spec's DAGs are loaded until it is fixed. Other specs are not affected.\n\n"
        f"{listing}\n\nFix the file, then check it with `drflow validate {source}`."
    )
    task = TaskPlan(
        task_id="spec_is_invalid",
        action="spec.invalid",
        doc="Fails with the validation errors of the spec.",
        params={"source": str(source), "errors": errors},
        retries=0,
    )
    return DagPlan(
        dag_id=f"dr.{stem}.spec-error",
        kind=KIND_SPEC_ERROR,
        spec=stem,
        source=str(source),
        component=None,
        criticality=None,
        schedule=None,
        description=f"INVALID SPEC: {errors[0] if errors else source}"[:200],
        display_name=f"{stem} · INVALID SPEC",
        doc_md=doc,
        owner="drflow",
        retries=0,
        retry_delay_s=60,
        tasks=(task,),
        error=errors[0] if errors else "invalid spec",
    )
