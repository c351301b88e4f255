"""The full-scale exercise's tasks: a participant confirms the start, the plan's DAG runs, its record is kept."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import BaseOperator

from drflow.contracts import ExerciseFacts, PlanFacts
from drflow.operators.exercise_chain import EXERCISE_CONF_KEY, START_TASK, plan_run_id
from drflow.operators.hitl_text import answer_of, hitl_users

TRIGGER_TASK = "trigger_plan"


class FullScaleStartOperator(ApprovalOperator):
    """A participant approves the start of the real plan; Reject (or no answer) runs nothing."""

    template_fields: Sequence[str] = ()
    ui_color = "#f5b7b1"

    def __init__(self, *, exercise: Mapping[str, Any], **kwargs: Any) -> None:
        from drflow.spec.types import parse_duration

        self.facts = ExerciseFacts.from_params(exercise)
        who = ", ".join(self.facts.who(user) for user in self.facts.participants)
        body = (
            f"**Full-scale exercise `{self.facts.exercise}`** ({self.facts.scenario}): **Approve** triggers the REAL "
            f"recovery plan `{self.facts.plan}` (DAG `{self.facts.plan_dag_id}`) against production, marked as this "
            "exercise. Its disaster declaration then asks the plan's approvers; you count as the person who "
            f"triggered it (four eyes). Participants: {who}. **Reject** runs nothing; the exercise is recorded "
            "as not run."
        )
        timeout = self.facts.answer_timeout
        super().__init__(
            subject=f"Start full-scale exercise {self.facts.exercise} (runs plan {self.facts.plan} for real)?",
            body=body + (f"\n\n{self.facts.description}" if self.facts.description else ""),
            assigned_users=hitl_users(self.facts.participants),
            response_timeout=parse_duration(timeout) if timeout else None,
            **kwargs,
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        answer = answer_of(event)
        if answer["by"] not in self.facts.participants:
            raise AirflowFailException(
                f"refused: {answer['by'] or 'an unknown user'} answered the start of full-scale exercise "
                f"{self.facts.exercise}, but only its participants ({', '.join(self.facts.participants)}) may; "
                "to proceed: clear this task and let a participant answer"
            )
        super().execute_complete(context, event)
        return {"started": self.APPROVE in answer["chosen"], "by": answer["by"], "at": answer["at"]}


class FullScaleTriggerOperator(TriggerDagRunOperator):
    """Trigger the plan's DAG marked as this exercise, and wait (deferred) until that run ends, however it ends."""

    template_fields: Sequence[str] = ()
    ui_color = "#fadbd8"

    def __init__(self, *, exercise: Mapping[str, Any], **kwargs: Any) -> None:
        self.facts = ExerciseFacts.from_params(exercise)
        super().__init__(
            trigger_dag_id=self.facts.plan_dag_id,
            wait_for_completion=True,
            deferrable=True,
            poke_interval=5,
            allowed_states=["success", "failed"],
            failed_states=[],
            fail_when_dag_is_paused=True,
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        dag_run = context["dag_run"]
        start = context["ti"].xcom_pull(task_ids=START_TASK) or {}
        starter = start.get("by")
        mark = {
            "name": self.facts.exercise,
            "type": self.facts.type,
            "scenario": self.facts.scenario,
            "dag_id": dag_run.dag_id,
            "run_id": dag_run.run_id,
            "started_by": starter,
        }
        self.trigger_run_id = plan_run_id(self.facts.exercise, dag_run.run_id)
        self.conf = {
            "reason": f"EXERCISE (not a real incident): full-scale exercise {self.facts.exercise} of plan "
            f"{self.facts.plan}, scenario {self.facts.scenario}, started by {starter}",
            "notes": f"Triggered by run {dag_run.run_id} of {dag_run.dag_id}. Participants: "
            + ", ".join(self.facts.who(user) for user in self.facts.participants),
            EXERCISE_CONF_KEY: mark,
        }
        self.note = f"EXERCISE {self.facts.exercise} ({self.facts.scenario}), started by {starter}"
        self.log.info("triggering %s as run %s", self.trigger_dag_id, self.trigger_run_id)
        from airflow.providers.standard.operators.trigger_dagrun import DagIsPaused
        from airflow.sdk.exceptions import AirflowFailException

        try:
            return super().execute(context)
        except DagIsPaused:
            raise AirflowFailException(
                f"the plan's DAG {self.trigger_dag_id} is paused, so its run would never start; to proceed: unpause "
                "it (it must be unpaused to run in an incident too), then clear this task"
            ) from None


class FullScaleResultOperator(BaseOperator):
    """The plan run's recovery record (the store's, else rebuilt from Airflow's API) as the exercise result."""

    template_fields: Sequence[str] = ()
    ui_color = "#d5dbdb"

    def __init__(self, *, exercise: Mapping[str, Any], plan: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.facts = ExerciseFacts.from_params(exercise)
        self.plan = dict(plan)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.exercises.fullscale import not_started, record_findings
        from drflow.store.exercise_results import exercise_result, write_exercise_result, written_summary

        ti, dag_run = context["ti"], context["dag_run"]
        start = ti.xcom_pull(task_ids=START_TASK)
        run_id = ti.xcom_pull(task_ids=TRIGGER_TASK, key="trigger_run_id")
        record = self._record(str(run_id)) if run_id else None
        if record is None:
            outcome, rto_s, rpo_s = "failed", None, None
            findings = not_started(self.facts, start)
            if run_id:
                findings = [{"step": "record", "ok": False, "detail": f"no recovery record of plan run {run_id}"}]
        else:
            outcome, rto_s, rpo_s, findings = record_findings(record, self.facts)
        result = exercise_result(
            spec=self.facts.spec,
            exercise=self.facts.exercise,
            type="full-scale",
            plan=self.facts.plan,
            scenario=self.facts.scenario,
            components=self.facts.components,
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            started_at=getattr(dag_run, "start_date", None) or datetime.now(UTC),
            finished_at=datetime.now(UTC),
            participants=self.facts.participants,
            outcome=outcome,
            rto_s=rto_s,
            rpo_s=rpo_s,
            objectives=(self.facts.rto_s, self.facts.rpo_s),
            findings=findings,
            plan_dag_id=self.facts.plan_dag_id,
            plan_run_id=run_id,
            started_by=(start or {}).get("by"),
            record_key=(record or {}).get("report_key"),
        )
        stored = write_exercise_result(result, self.facts.targets)
        result["stored"] = stored
        self.log.info("full-scale %s: %s; %s", self.facts.exercise, outcome, written_summary(stored))
        if stored["failed"]:
            ti.xcom_push(key="return_value", value=result)
            raise AirflowFailException(f"the result was not stored everywhere: {written_summary(stored)}")
        return result

    def _record(self, run_id: str) -> dict[str, Any] | None:
        """The plan run's recovery record from the store (any target of any component), else from the API."""
        from drflow.store.factory import target_catalogs

        facts = PlanFacts.from_params(self.plan)
        for component, component_facts in facts.components.items():
            for name, catalog in target_catalogs(facts.spec, component_facts.targets):
                try:
                    found = [r for r in catalog.read_reports(component, "recovery") if r.get("run_id") == run_id]
                except Exception as exc:  # one unreadable target: try the next
                    self.log.warning("cannot read the recovery records in %s: %s", name, exc)
                    continue
                if found:
                    return found[-1]
        return self._record_from_api(facts, run_id)

    def _record_from_api(self, facts: PlanFacts, run_id: str) -> dict[str, Any] | None:
        from drflow.audit.api import AirflowApi, AuditError
        from drflow.audit.gather import gather_run
        from drflow.audit.record import build_record

        try:
            gathered = gather_run(AirflowApi.from_connection(facts.audit_conn_id), self.facts.plan_dag_id, run_id)
        except AuditError as exc:
            self.log.warning("no recovery record of %s in the store, and the API cannot be read: %s", run_id, exc)
            return None
        return build_record(self.plan, gathered)
