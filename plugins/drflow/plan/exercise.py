"""Exercise DAGs (kind `exercise`): `dr.<spec>.exercise.<name>`, one per entry of the spec's `exercises:`.

Each type has its own builder (tabletop, walkthrough, full-scale); all of them start from the plan graph
the plan's DAG runs (:func:`drflow.plan.recovery.plan_graph`), so an exercise rehearses exactly that.
Simulations are built by their own builder (a DAG of the plan against isolated copies) and are not
produced here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from drflow.contracts import ExerciseFacts
from drflow.plan.exercise_common import KIND_EXERCISE, SCENARIO_STORIES, exercise_facts
from drflow.plan.exercise_fullscale import fullscale_tasks
from drflow.plan.exercise_tabletop import tabletop_tasks
from drflow.plan.exercise_walkthrough import walkthrough_tasks
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.plan.recovery import CRITICALITY_ORDER, plan_graph
from drflow.spec.exercises import Exercise
from drflow.spec.model import Spec
from drflow.spec.types import airflow_schedule


def exercise_plans(spec: Spec, source: str, graphs: Mapping[str, DagPlan] | None = None) -> list[DagPlan]:
    """The DAG of every tabletop, walkthrough and full-scale exercise of the spec.

    ``graphs``: the plans' :func:`plan_graph` by plan name, when the caller has built them already.
    """
    builders: dict[str, Callable[[ExerciseFacts, DagPlan], list[TaskPlan]]] = {
        "tabletop": tabletop_tasks,
        "walkthrough": walkthrough_tasks,
        "full-scale": fullscale_tasks,
    }
    dags = []
    for exercise in spec.exercises:
        if exercise.type not in builders:
            continue
        plan = spec.recovery_plan(exercise.plan)
        graph = graphs[plan.name] if graphs and plan.name in graphs else plan_graph(spec, plan, source)
        facts = exercise_facts(spec, exercise)
        dags.append(_dag(spec, exercise, facts, graph, builders[exercise.type](facts, graph), source))
    return dags


WHAT_IT_DOES = {
    "tabletop": "The participants answer the plan's decision points in Airflow (*Required actions*), one at a time, "
    "as the plan's people would in the scenario: their choice, how they would decide, and the gaps they see. "
    "Nothing is run.",
    "walkthrough": "Every step of the plan checks its preconditions without changing anything (connections "
    "reachable, replica in recovery and its lag known, DNS record and zone, backups and WAL, reviewed commands, "
    "approvers and channels). A step that would fail today fails here, saying why; the report lists them all.",
    "full-scale": "The real plan: once a participant confirms the start, the plan's DAG is triggered (marked as this "
    "exercise) and its disaster declaration still asks the plan's approvers. The result is taken from the "
    "recovery record when the run ends.",
}


def _dag(
    spec: Spec, exercise: Exercise, facts: ExerciseFacts, graph: DagPlan, tasks: list[TaskPlan], source: str
) -> DagPlan:
    components = [spec.component(name) for name in facts.components]
    who = ", ".join(facts.who(user) for user in facts.participants) or "nobody named"
    doc = [
        f"# Exercise `{exercise.name}`: {exercise.type} of plan `{facts.plan}`",
        "",
        f"- **Scenario**: {facts.scenario}. {SCENARIO_STORIES[facts.scenario]}",
        f"- **Plan**: `{facts.plan}` (DAG `{facts.plan_dag_id}`), components {', '.join(facts.components)}",
        f"- **Objectives**: RTO {facts.rto_s}s, RPO {facts.rpo_s}s (the strictest of the plan's components)",
        f"- **Participants**: {who}",
        f"- **Schedule**: `{exercise.effective_schedule}`",
        "",
        WHAT_IT_DOES[exercise.type],
        "",
        "The result (participants, timings, measured RTO/RPO, findings) is written into every storage target of "
        "the spec, as report kind `exercise` of each component the plan affects.",
    ]
    if exercise.description:
        doc[1:1] = ["", exercise.description]
    doc += ["", "---", "", graph.doc_md]
    return DagPlan(
        dag_id=facts.dag_id,
        kind=KIND_EXERCISE,
        spec=spec.metadata.name,
        source=source,
        component=facts.components[0] if len(facts.components) == 1 else None,
        criticality=min((c.criticality for c in components), key=CRITICALITY_ORDER.index),
        schedule=airflow_schedule(exercise.effective_schedule),
        description=f"{exercise.type} exercise of plan {facts.plan} ({facts.scenario})"[:200],
        doc_md="\n".join(doc),
        owner=spec.metadata.owner,
        retries=0,
        retry_delay_s=int(spec.defaults.retry_delay.total_seconds()),
        tasks=tuple(tasks),
        extra_tags=(
            f"type:{exercise.type}",
            f"scenario:{facts.scenario}",
            f"plan:{facts.plan}",
            *(f"component:{name}" for name in facts.components),
        ),
        paused=exercise.effective_paused,
        skip_missed_slot=True,
    )
