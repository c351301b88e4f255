"""The walkthrough's tasks: one check-only task per plan step, and the report that stores every finding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts import ExerciseFacts, PlanFacts, StepDefinition, WalkthroughCheck


class WalkthroughCheckOperator(BaseOperator):
    """Would this plan step succeed today? Checks its preconditions, changes nothing; fails (saying why) if not."""

    template_fields: Sequence[str] = ()
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        exercise: Mapping[str, Any],
        step: Mapping[str, Any],
        plan: Mapping[str, Any],
        check: Mapping[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.exercise = ExerciseFacts.from_params(exercise)
        self.definition = StepDefinition.from_params(step)
        self.plan = dict(plan)
        self.check = WalkthroughCheck.from_params(check)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.exercises.walkthrough import check_step

        finding = check_step(self.definition, PlanFacts.from_params(self.plan), self.check)
        self.log.info("%s: %s — %s", finding["step"], "ready" if finding["ok"] else "WOULD FAIL", finding["detail"])
        if not finding["ok"]:
            context["ti"].xcom_push(key="return_value", value=finding)
            raise AirflowFailException(f"step {finding['step']} would fail today: {finding['detail']}")
        return finding


class WalkthroughReportOperator(BaseOperator):
    """Every step's finding into every storage target; fails when a step would fail or a target was not written."""

    template_fields: Sequence[str] = ()
    ui_color = "#d5dbdb"

    def __init__(self, *, exercise: Mapping[str, Any], steps: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exercise = ExerciseFacts.from_params(exercise)
        self.steps = list(steps)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.exercises.walkthrough import walkthrough_result
        from drflow.store.exercise_results import write_exercise_result, written_summary

        ti, dag_run = context["ti"], context["dag_run"]
        findings = []
        for step in self.steps:
            found = ti.xcom_pull(task_ids=step)
            if not isinstance(found, Mapping):
                found = {"step": step, "ok": False, "detail": "no result: the check did not finish (see its log)"}
            findings.append(dict(found))
        started = getattr(dag_run, "start_date", None) or datetime.now(UTC)
        result = walkthrough_result(
            self.exercise, findings, started, datetime.now(UTC), dag_id=dag_run.dag_id, run_id=dag_run.run_id
        )
        stored = write_exercise_result(result, self.exercise.targets)
        result["stored"] = stored
        self.log.info("walkthrough %s: %s; %s", self.exercise.exercise, result["outcome"], written_summary(stored))
        failing = [f for f in findings if not f["ok"]]
        for finding in failing:
            self.log.warning("would fail: %s — %s", finding["step"], finding["detail"])
        problems = []
        if failing:
            what = "; ".join(f"{f['step']} ({f['detail']})" for f in failing)
            problems.append(f"{len(failing)} step(s) of plan {self.exercise.plan} would fail today: {what}")
        if stored["failed"]:
            problems.append(f"the result was not stored everywhere: {written_summary(stored)}")
        if problems:
            ti.xcom_push(key="return_value", value=result)
            raise AirflowFailException(
                "; ".join(problems) + "; to proceed: fix what each step names, then run the walkthrough again"
            )
        return result
