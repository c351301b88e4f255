"""What every exercise DAG builder shares: the DAG id, the exercise facts, the scenarios' stories."""

from __future__ import annotations

from typing import Any

from drflow.contracts import ExerciseFacts
from drflow.plan.recovery import plan_dag_id, plan_objectives
from drflow.spec.exercises import Exercise
from drflow.spec.model import Spec
from drflow.spec.types import format_duration

KIND_EXERCISE = "exercise"
SCENARIO_STORIES: dict[str, str] = {
    "primary-region-failure": "The primary region is down: its data center lost power and network, the primary "
    "database and everything beside it are unreachable, and nobody can say when it comes back.",
    "database-corruption": "Bad writes (a faulty migration, a bug, a mistaken DELETE) corrupted production data. "
    "The database runs, but what it holds since the incident began cannot be trusted.",
    "security-breach": "An attacker had access to production: credentials were stolen and data may be changed "
    "or read. What the attacker touched cannot be trusted.",
    "application-failure": "A deployment or configuration change broke the application; it writes wrong data or "
    "fails, and rolling the code back does not repair what it already wrote.",
    "network-outage": "The network between the regions (or to the primary) fails: the primary may still run "
    "and take writes from clients that reach it, while others cannot reach it at all.",
}


def exercise_dag_id(spec: Spec, exercise: Exercise) -> str:
    return f"dr.{spec.metadata.name}.exercise.{exercise.name}"


def exercise_facts(spec: Spec, exercise: Exercise) -> ExerciseFacts:
    plan = spec.recovery_plan(exercise.plan)
    rto_s, rpo_s = plan_objectives(spec, plan)
    return ExerciseFacts(
        spec=spec.metadata.name,
        exercise=exercise.name,
        type=exercise.type,
        plan=plan.name,
        scenario=exercise.effective_scenario(plan.scenario),
        components=tuple(plan.components),
        rto_s=rto_s,
        rpo_s=rpo_s,
        dag_id=exercise_dag_id(spec, exercise),
        plan_dag_id=plan_dag_id(spec, plan),
        targets=tuple(target.model_dump(mode="json") for target in spec.storage),
        participants=tuple(exercise.users),
        roles=exercise.roles,
        description=exercise.description,
        answer_timeout=format_duration(exercise.answer_timeout),
    )


def exercise_params(facts: ExerciseFacts, **more: Any) -> dict[str, Any]:
    return {"exercise": facts.to_params(), **more}
