"""Simulation DAGs (kind `simulation`, `dr.<spec>.plan.<plan>.simulation`): a recovery plan run on isolated copies.

`simulate` restores the newest backups into scratch instances, runs the plan's steps on them (see
``drflow.jobs.simulation``) and removes them; `record_exercise` writes the result into every storage target
and fails the run when the simulation failed. Manual unless a schedule is given (an exercise's).
"""

from __future__ import annotations

from drflow.contracts import SimulationRun, StepDefinition
from drflow.contracts.simulation import SIMULATE_TASK
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.plan.recovery import plan_dag_fields, plan_dag_id, plan_facts, plan_tags, step_fields
from drflow.spec.model import Spec
from drflow.spec.plans import RecoveryPlan
from drflow.spec.types import airflow_schedule
from drflow.units import human_duration

KIND_SIMULATION = "simulation"
SIMULATE, RECORD_EXERCISE = SIMULATE_TASK, "record_exercise"
DEFAULT_EXERCISE = "simulation"

HOW_SIMULATED = {
    "assess": "health of the copies",
    "gate_lag": "the lag gate between the copies",
    "fence": "fences the copy of the node",
    "promote": "promotes the copy of the standby (lag gate and split-brain guard on the copies)",
    "rebuild_replica": "rebuilds the copy of the node as a standby of the other copy",
    "restore": "restores the newest backup (or point) into another scratch instance",
    "validate_sql": "runs the checks on the copy",
    "switch_dns": "switches a test record `drflow-simulation.<record>` in the same zone, then deletes it",
    "http_call": "not called: it acts on the live service (recorded as what would be called)",
    "validate_http": "not called: it checks the live service, which the copies do not serve",
    "notify": "not sent (recorded as what would be sent)",
    "run_command": "not run: checks the reviewed script exists (recorded as what would run)",
}


def simulation_dag_id(spec: Spec, plan: RecoveryPlan) -> str:
    return f"{plan_dag_id(spec, plan)}.simulation"


def simulation_run(
    spec: Spec, plan: RecoveryPlan, *, exercise: str = DEFAULT_EXERCISE, dag_id: str | None = None
) -> SimulationRun:
    """What the simulation of ``plan`` is given; the CLI and the DAG build it here alike."""
    steps = [StepDefinition.from_params(step_fields(spec, plan, index)) for index in range(len(plan.steps))]
    after = {
        step.name: tuple(step.depends_on) or ((plan.steps[index - 1].name,) if index else ())
        for index, step in enumerate(plan.steps)
    }
    return SimulationRun(
        exercise=exercise,
        dag_id=dag_id or simulation_dag_id(spec, plan),
        plan=plan_facts(spec, plan),
        steps=tuple(_in_order(steps, after)),
        after=after,
        storage=tuple(target.model_dump(mode="json") for target in spec.storage),
        work_dir=spec.defaults.work_dir,
    )


def _in_order(steps: list[StepDefinition], after: dict[str, tuple[str, ...]]) -> list[StepDefinition]:
    """The steps in spec order, each after the steps it waits for (validation refuses cycles)."""
    ordered: list[StepDefinition] = []
    done: set[str] = set()
    pending = list(steps)
    while pending:
        ready = next((s for s in pending if set(after[s.name]) <= done), pending[0])
        ordered.append(ready)
        done.add(ready.name)
        pending.remove(ready)
    return ordered


def simulation_plan(
    spec: Spec,
    plan: RecoveryPlan,
    source: str,
    *,
    schedule: str | None = None,
    exercise: str = DEFAULT_EXERCISE,
    dag_id: str | None = None,
    paused: bool | None = None,
) -> DagPlan:
    """The simulation DAG of ``plan``: manual (``schedule`` None), or an exercise's DAG on its schedule."""
    run = simulation_run(spec, plan, exercise=exercise, dag_id=dag_id)
    params = {"simulation": run.to_params()}
    simulate = TaskPlan(
        task_id=SIMULATE,
        action="simulation.run",
        doc="Restore the newest backups into scratch instances (a standby copy for each replica the plan uses), "
        "run the plan's steps on the copies, measure the recovery time and the data loss, remove the copies. "
        "Touches nothing in production.",
        params=params,
        retries=0,
    )
    record = TaskPlan(
        task_id=RECORD_EXERCISE,
        action="simulation.record",
        doc="Write the result into every storage target of the spec (an `exercise` report per affected component); "
        "fail when the simulation failed.",
        params=params,
        upstream=(SIMULATE,),
    )
    rto_s, rpo_s = run.plan.rto_s, run.plan.rpo_s
    lines = [
        f"- `{step.name}`: "
        + (
            f"{step.type} step: recorded as who would be asked, not waited for"
            if step.type in ("manual", "approval")
            else HOW_SIMULATED.get(step.action or "", "simulated on the copies")
        )
        for step in run.steps
    ]
    doc = (
        f"# Simulation of plan `{plan.name}` ({plan.scenario})\n\n"
        f"Runs the plan against isolated copies: the newest backups restored into scratch PostgreSQL instances "
        f"on free loopback ports, never the production servers or DNS record. Measures the recovery time (the "
        f"simulated steps' wall clock) against the RTO of {human_duration(rto_s)} and the data loss (the "
        f"copy's last transaction against the source's now) against the RPO of {human_duration(rpo_s)}.\n\n"
        + "\n".join(lines)
        + f"\n\nExercise `{exercise}`, "
        + (f"schedule `{schedule}`" if schedule else "triggered by hand")
        + f". Spec: `{source}`."
    )
    return DagPlan(
        dag_id=run.dag_id,
        kind=KIND_SIMULATION,
        schedule=airflow_schedule(schedule) if schedule else None,
        description=f"simulation of {plan.name} ({plan.scenario}) on isolated copies"[:200],
        doc_md=doc,
        tasks=(simulate, record),
        extra_tags=(*plan_tags(plan), f"program:{exercise}"),
        skip_missed_slot=schedule is not None,
        **{**plan_dag_fields(spec, plan, source), **({"paused": paused} if paused is not None else {})},
    )
