"""The tasks of a tabletop exercise: a briefing, one question per decision point of the plan, a debrief.

The questions are written from the plan DAG's own tasks and their runbook text (`plan/runbook.py`): each
decision point shows the steps that run before it (since the previous one) and the decision itself.
The participants answer in Airflow's human-in-the-loop UI; `record_result` writes what they answered.
"""

from __future__ import annotations

from drflow.contracts import ExerciseFacts, TabletopQuestion
from drflow.plan.exercise_common import SCENARIO_STORIES, exercise_params
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.plan.runbook import decision_point, step_texts

BRIEF, DEBRIEF, RESULT = "brief", "debrief", "record_result"
START = "Start"
WORKS, NEEDS_CHANGES = "The plan works as written", "The plan needs changes"
OVERRIDE, STOP = "Go on with the override", "Stop the plan"
OPTIONS = {
    "plan.declare": (("Approve", "Reject"), "Approve"),
    "plan.approval": (("Approve", "Reject"), "Approve"),
    "plan.manual": (("Done", "Failed"), "Done"),
}
ASK = (
    "Answer as the plan's people would in this scenario: choose what you would do, say in **answer** how you would "
    "decide (who, with what information), and write in **gaps** anything missing or unclear — access you lack, "
    "an instruction you could not follow, a person you could not reach, a check you could not make. Leave gaps "
    "empty when there are none."
)


def tabletop_questions(facts: ExerciseFacts, graph: DagPlan) -> list[TabletopQuestion]:
    """The briefing, each decision point of the plan in runbook order, and the debrief."""
    questions = [_brief(facts, graph)]
    pending: list[str] = []
    for step, text in step_texts(graph):
        decision = decision_point(step)
        if decision is None:
            pending += text
            continue
        options, plan_answer = OPTIONS.get(step.task.action, ((OVERRIDE, STOP), None))
        body = []
        if pending:
            body += ["### What has happened so far (the plan's steps before this one)", "", *pending, ""]
        body += ["### The decision", "", *text, "", f"**Decision point**: {decision}", "", ASK]
        questions.append(
            TabletopQuestion(
                task_id=f"decide-{step.task.task_id}",
                kind="decision",
                title=f"Tabletop {facts.exercise}: step {step.number}, {step.task.task_id}",
                body="\n".join(body),
                options=options,
                step=step.task.task_id,
                plan_answer=plan_answer,
            )
        )
        pending = []
    body = []
    if pending:
        body += ["### After the last decision (the plan's remaining steps)", "", *pending, ""]
    body += [
        "### Debrief",
        "",
        f"Does plan `{facts.plan}` work as written for this scenario? Name every gap found (each on its own line) "
        "and the follow-ups agreed, with who does them.",
    ]
    questions.append(
        TabletopQuestion(
            task_id=DEBRIEF,
            kind="debrief",
            title=f"Tabletop {facts.exercise}: debrief",
            body="\n".join(body),
            options=(WORKS, NEEDS_CHANGES),
            plan_answer=WORKS,
        )
    )
    return questions


def _brief(facts: ExerciseFacts, graph: DagPlan) -> TabletopQuestion:
    who = ", ".join(facts.who(user) for user in facts.participants)
    lines = [
        f"**Scenario — {facts.scenario}**: {SCENARIO_STORIES[facts.scenario]}",
        "",
        *([facts.description, ""] if facts.description else []),
        f"You rehearse plan `{facts.plan}` ({graph.description}). Its objectives: RTO {facts.rto_s}s, "
        f"RPO {facts.rpo_s}s. Participants: {who}.",
        "",
        "Nothing runs: you walk through the plan's decision points one question at a time, in the order the "
        "plan's DAG reaches them. The time between two answers is recorded as the time the decision took.",
        "",
        f"Answer **{START}** when everyone is present.",
    ]
    return TabletopQuestion(
        task_id=BRIEF,
        kind="brief",
        title=f"Tabletop {facts.exercise}: plan {facts.plan}, {facts.scenario}",
        body="\n".join(lines),
        options=(START,),
    )


def tabletop_tasks(facts: ExerciseFacts, graph: DagPlan) -> list[TaskPlan]:
    questions = tabletop_questions(facts, graph)
    tasks = []
    previous: str | None = None
    for question in questions:
        tasks.append(
            TaskPlan(
                task_id=question.task_id,
                action="exercise.tabletop_question",
                doc=question.title,
                params=exercise_params(facts, question=question.to_params()),
                upstream=(previous,) if previous else (),
                retries=0,
                # A question nobody answered in time fails; the tabletop goes on to the next one.
                trigger_rule="all_done",
            )
        )
        previous = question.task_id
    tasks.append(
        TaskPlan(
            task_id=RESULT,
            action="exercise.tabletop_result",
            doc="The answers, the time each decision took and the gaps named, written into every storage target.",
            params=exercise_params(facts, questions=[q.to_params() for q in questions]),
            upstream=(DEBRIEF,),
            retries=2,
            trigger_rule="all_done",
        )
    )
    return tasks
