"""The tasks of a full-scale exercise: a participant confirms the start, the real plan runs, its result is kept.

`trigger_plan` triggers the plan's DAG with the exercise in its conf and note, and waits (deferred, in the
triggerer) until the run ends, whatever its outcome; the plan's disaster declaration still asks the plan's
approvers, with the participant who started the exercise counted as the one who triggered it (four eyes).
`record_result` reads the plan run's recovery record.
"""

from __future__ import annotations

from drflow.contracts import ExerciseFacts
from drflow.plan.exercise_common import exercise_params
from drflow.plan.graph import DagPlan, TaskPlan

START, TRIGGER, RESULT = "start", "trigger_plan", "record_result"
WAIT_S = 24 * 3600
"""How long trigger_plan waits for the plan run to end (its approvals and manual steps included)."""


def fullscale_tasks(facts: ExerciseFacts, graph: DagPlan) -> list[TaskPlan]:
    plan_facts = next(t.params["plan"] for t in graph.tasks if "plan" in t.params)
    return [
        TaskPlan(
            task_id=START,
            action="exercise.fullscale_start",
            doc=f"A participant confirms the start of the full-scale exercise: it runs the REAL plan "
            f"`{facts.plan}` (DAG `{facts.plan_dag_id}`). Reject, or no answer, runs nothing.",
            params=exercise_params(facts),
            retries=0,
        ),
        TaskPlan(
            task_id=TRIGGER,
            action="exercise.fullscale_trigger",
            doc=f"Triggers `{facts.plan_dag_id}` marked as this exercise and waits until that run ends.",
            params=exercise_params(facts),
            upstream=(START,),
            retries=0,
            timeout_s=WAIT_S,
        ),
        TaskPlan(
            task_id=RESULT,
            action="exercise.fullscale_result",
            doc="The plan run's recovery record as the exercise result (measured RTO and RPO, every step), "
            "written into every storage target.",
            params=exercise_params(facts, plan=plan_facts),
            upstream=(TRIGGER,),
            retries=2,
            trigger_rule="all_done",
        ),
    ]
