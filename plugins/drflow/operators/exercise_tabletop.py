"""The tabletop's tasks: each question to the participants (Airflow human-in-the-loop), and the result.

A question is assigned to the exercise's participants; drflow checks itself that whoever answered is one of
them. Its body was written from the plan graph at build time (spec text is never rendered as a template).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import BaseOperator

from drflow.contracts import ExerciseFacts, TabletopQuestion
from drflow.operators.hitl_text import answer_of, hitl_users

FIELDS = {
    "brief": (),
    "decision": (
        ("answer", "What you would do, and how you would decide (who, with what information)."),
        ("gaps", "Gaps you found, one per line: missing access, unclear instructions, people you could not reach."),
    ),
    "debrief": (
        ("gaps", "Every gap found in the plan, one per line."),
        ("follow_ups", "Follow-ups agreed, and who does them."),
    ),
}


class TabletopQuestionOperator(HITLOperator):
    """One question of a tabletop, for the participants: the briefing, a decision point, or the debrief."""

    template_fields: Sequence[str] = ()
    ui_color = "#e8daef"

    def __init__(self, *, exercise: Mapping[str, Any], question: Mapping[str, Any], **kwargs: Any) -> None:
        from airflow.sdk import Param
        from airflow.sdk.definitions.param import ParamsDict

        from drflow.spec.types import parse_duration

        self.facts = ExerciseFacts.from_params(exercise)
        self.question = TabletopQuestion.from_params(question)
        params = ParamsDict(kwargs.pop("params", None) or {})
        for name, description in FIELDS.get(self.question.kind, ()):
            params[name] = Param("", type="string", description=description, source="task")
        timeout = self.facts.answer_timeout
        super().__init__(
            subject=self.question.title,
            options=list(self.question.options),
            body=self.question.body,
            params=params,
            assigned_users=hitl_users(self.facts.participants),
            response_timeout=parse_duration(timeout) if timeout else None,
            **kwargs,
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        answer = answer_of(event)
        if not answer["timed_out"] and answer["by"] not in self.facts.participants:
            raise AirflowFailException(
                f"refused: {answer['by'] or 'an unknown user'} answered {self.question.task_id} of tabletop "
                f"{self.facts.exercise}, but only its participants ({', '.join(self.facts.participants)}) may; "
                "to proceed: clear this task and let a participant answer, or add the user to the exercise's "
                "participants in the spec"
            )
        super().execute_complete(context, event)
        given = event.get("params_input") or {}
        return {
            "question": self.question.task_id,
            **{k: v for k, v in answer.items() if k != "comment"},
            **{name: str(given.get(name) or "") for name, _ in FIELDS.get(self.question.kind, ())},
        }


class TabletopResultOperator(BaseOperator):
    """What the participants answered, how long each decision took and the gaps named, into every target."""

    template_fields: Sequence[str] = ()
    ui_color = "#d5dbdb"

    def __init__(self, *, exercise: Mapping[str, Any], questions: Sequence[Mapping[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.facts = ExerciseFacts.from_params(exercise)
        self.questions = [TabletopQuestion.from_params(q) for q in questions]

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.exercises.tabletop import answered_by, tabletop_findings
        from drflow.store.exercise_results import exercise_result, write_exercise_result, written_summary

        ti, dag_run = context["ti"], context["dag_run"]
        answers = {q.task_id: ti.xcom_pull(task_ids=q.task_id) for q in self.questions}
        findings, session = tabletop_findings(self.questions, answers)
        started = getattr(dag_run, "start_date", None) or datetime.now(UTC)
        result = exercise_result(
            spec=self.facts.spec,
            exercise=self.facts.exercise,
            type="tabletop",
            plan=self.facts.plan,
            scenario=self.facts.scenario,
            components=self.facts.components,
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            started_at=started,
            finished_at=datetime.now(UTC),
            participants=answered_by(findings, self.facts),
            outcome="passed" if all(f["ok"] for f in findings) else "failed",
            rto_s=None,
            rpo_s=None,
            objectives=(self.facts.rto_s, self.facts.rpo_s),
            findings=findings,
            roles=dict(self.facts.roles),
            **session,
        )
        stored = write_exercise_result(result, self.facts.targets)
        result["stored"] = stored
        self.log.info("tabletop %s: %s; %s", self.facts.exercise, result["outcome"], written_summary(stored))
        if stored["failed"]:
            ti.xcom_push(key="return_value", value=result)
            raise AirflowFailException(
                f"the tabletop result was not stored everywhere: {written_summary(stored)}; to proceed: fix the "
                "target and clear this task (the answers are kept in the questions' XCom)"
            )
        return result
