"""The tasks of a walkthrough: every task of the plan's DAG, in check-only mode, then a report.

Each check task has the plan task's id, its step definition, plan facts and upstream, so the walkthrough
walks exactly the graph the plan runs; every check runs whatever the earlier ones found (`all_done`),
fails when its step would fail today, and `report` writes them all.
"""

from __future__ import annotations

from drflow.contracts import ExerciseFacts, StepDefinition, WalkthroughCheck
from drflow.plan.exercise_common import exercise_params
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.plan.recovery import RECORD
from drflow.plan.runbook import RunbookStep, plan_steps

REPORT = "report"
CHECK_TIMEOUT_S = 300


def walkthrough_checks(graph: DagPlan) -> list[tuple[TaskPlan, WalkthroughCheck]]:
    """The plan's tasks (not the record) in runbook order, each with what it checks."""
    steps = [s for s in plan_steps(graph) if s.task.task_id != RECORD]
    by_id = {s.task.task_id: s for s in steps}
    checks = []
    for step in steps:
        fenced = []
        for ancestor in _ancestors(step.task.task_id, by_id):
            definition: StepDefinition = by_id[ancestor].definition
            if definition.action == "fence":
                fenced.append(f"{definition.component}:{definition.fields.get('node') or 'primary'}")
        checks.append(
            (step.task, WalkthroughCheck(task_id=step.task.task_id, action=step.task.action, fenced_before=fenced))
        )
    return checks


def _ancestors(task_id: str, by_id: dict[str, RunbookStep]) -> list[str]:
    seen: list[str] = []
    stack = [task_id]
    while stack:
        for upstream in by_id[stack.pop()].task.upstream:
            if upstream not in seen and upstream in by_id:
                seen.append(upstream)
                stack.append(upstream)
    return seen


def walkthrough_tasks(facts: ExerciseFacts, graph: DagPlan) -> list[TaskPlan]:
    checks = walkthrough_checks(graph)
    tasks = [
        TaskPlan(
            task_id=task.task_id,
            action="exercise.walkthrough_check",
            doc=f"Check only, changes nothing: would `{task.task_id}` ({task.action.removeprefix('plan.')}) "
            f"succeed today? {task.doc.split(chr(10))[0]}",
            params=exercise_params(
                facts,
                step=task.params.get("step") or {"name": task.task_id},
                plan=task.params["plan"],
                check=check.to_params(),
            ),
            upstream=task.upstream,
            retries=0,
            timeout_s=CHECK_TIMEOUT_S,
            trigger_rule="all_done",
        )
        for task, check in checks
    ]
    followed = {upstream for task in tasks for upstream in task.upstream}
    tasks.append(
        TaskPlan(
            task_id=REPORT,
            action="exercise.walkthrough_report",
            doc="Which steps would fail today and why, written into every storage target; fails when any would.",
            params=exercise_params(facts, steps=[task.task_id for task, _ in checks]),
            upstream=tuple(t.task_id for t in tasks if t.task_id not in followed),
            retries=2,
            trigger_rule="all_done",
        )
    )
    return tasks
