"""The last task of every plan run: the recovery record, from Airflow's own metadata via the REST API."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from drflow.contracts import StepDefinition
from drflow.operators.step_base import PlanStepOperator

REPORT_KIND = "recovery"
INCIDENT_KIND = "incident"


class RecoveryRecordOperator(PlanStepOperator):
    """Gather who triggered, who approved or refused, every step's tries and timings; judge against the RTO.

    Writes the record to the store (first target of the first affected component) and returns it
    (XCom). When the run failed and this task is not a teardown, it fails after writing the record, so
    the run's state says the recovery failed.
    """

    ui_color = "#d5dbdb"
    gated = False  # the record is written whatever happened, a refused declaration above all

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from drflow.audit.api import AirflowApi, AuditError
        from drflow.audit.gather import gather_run
        from drflow.audit.record import build_partial_record, build_record
        from drflow.audit.run_note import plan_run_note
        from drflow.operators.common import publish_note
        from drflow.units import human_duration

        dag_run = context["dag_run"]
        try:
            api = AirflowApi.from_connection(self.facts.audit_conn_id)
            facts = gather_run(api, dag_run.dag_id, dag_run.run_id)
        except AuditError as exc:
            # Keep what this task knows, so the store never lacks a record of the run, then fail visibly.
            partial = build_partial_record(self.plan, _run_fields(dag_run), str(exc))
            partial["report_key"] = self._store(partial, dag_run)
            context["ti"].xcom_push(key="return_value", value=partial)
            raise AirflowException(
                f"{exc}. A partial record (from this task's context only) is at {partial['report_key'] or 'XCom'}; "
                f"fix the connection and clear this task to record the whole trail"
            ) from exc
        results, failures = step_xcoms(context, self.task_id)
        record = build_record(
            self.plan,
            facts,
            steps_meta=steps_meta(context.get("dag")),
            record_task_id=self.task_id,
            step_results=results,
            notification_failures=failures,
            status_page=status_page_xcoms(context, self.task_id),
            refused_answers=refused_xcoms(context, self.task_id),
        )
        record["report_key"] = self._store(record, dag_run)
        self._incident_report(record, dag_run)
        measured = record["recovery"]["measured_s"]
        self.log.info(
            "recovery record of %s: %s; recovery %s (RTO %s, met: %s); stored at %s",
            record["run_id"],
            record["outcome"],
            "not measured" if measured is None else human_duration(measured),
            human_duration(self.facts.rto_s),
            record["recovery"]["rto_met"],
            record["report_key"],
        )
        for problem in record["problems"]:
            self.log.warning("%s", problem)
        publish_note(context, plan_run_note(record), self.facts.notes_conn_id, self.log)
        if record["outcome"] == "failed" and not self.is_teardown:
            context["ti"].xcom_push(key="return_value", value=record)
            raise AirflowFailException(
                f"recovery plan {record['plan']} did not recover: {'; '.join(record['problems'])}. The recovery "
                f"record is at {record['report_key'] or 'XCom only'}; fix the failed step and clear it, "
                f"or follow the runbook by hand"
            )
        return record

    def _incident_report(self, record: dict[str, Any], dag_run: Any) -> None:
        """The post-incident report (Markdown) beside the record: `drflow incident-report` prints the same."""
        from drflow.audit.incident import incident_markdown

        text = incident_markdown(record, sources=["the recovery record"])
        self.log.info("post-incident report:\n%s", text)
        report = {"run_id": record["run_id"], "plan": record["plan"], "format": "markdown", "text": text}
        record["incident_report_key"] = self._store(report, dag_run, kind=INCIDENT_KIND)

    def _store(self, record: dict[str, Any], dag_run: Any, kind: str = REPORT_KIND) -> str | None:
        from drflow.store.factory import target_catalogs

        for component, facts in self.facts.components.items():
            if not facts.targets:
                continue
            [(_, catalog)] = target_catalogs(self.facts.spec, facts.targets[:1])
            return catalog.write_report(component, kind, record_name(self.facts.plan, dag_run), record)
        self.log.warning(
            "no storage target among the plan's components: the record is kept in XCom only; give a component "
            "a backup policy with a target to keep records in the store"
        )
        return None


def record_name(plan: str, dag_run: Any) -> str:
    """Stable for every try of the record task of one run, sortable by time, distinct between runs."""
    when = getattr(dag_run, "start_date", None) or getattr(dag_run, "run_after", None) or datetime.now(UTC)
    digest = hashlib.sha1(str(dag_run.run_id).encode()).hexdigest()[:6]
    return f"{when.astimezone(UTC):%Y%m%dT%H%M%SZ}-{plan}-{digest}"


def _run_fields(dag_run: Any) -> dict[str, Any]:
    names = ("dag_id", "run_id", "conf", "note", "start_date", "triggering_user_name")
    return {name: getattr(dag_run, name, None) for name in names}


def step_xcoms(context: Any, record_task_id: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Every other task's result (for overrides) and the notifications it could not deliver."""
    from drflow.notifiers.base import NOTIFICATION_FAILURES_KEY

    ti = context["ti"]
    results: dict[str, Any] = {}
    failures: dict[str, list[Any]] = {}
    for task in getattr(context.get("dag"), "tasks", None) or []:
        if task.task_id == record_task_id:
            continue
        results[task.task_id] = ti.xcom_pull(task_ids=task.task_id)
        if failed := ti.xcom_pull(task_ids=task.task_id, key=NOTIFICATION_FAILURES_KEY):
            failures[task.task_id] = list(failed)
    return results, failures


def status_page_xcoms(context: Any, record_task_id: str) -> dict[str, list[Any]]:
    """What each task did on status pages (the incidents it opened or updated), by task id."""
    from drflow.notifiers.base import STATUSPAGE_KEY

    ti = context["ti"]
    found: dict[str, list[Any]] = {}
    for task in getattr(context.get("dag"), "tasks", None) or []:
        if task.task_id != record_task_id and (done := ti.xcom_pull(task_ids=task.task_id, key=STATUSPAGE_KEY)):
            found[task.task_id] = list(done)
    return found


def refused_xcoms(context: Any, record_task_id: str) -> list[dict[str, Any]]:
    """The answers drflow refused at each question of the run (each logged, then the question asked again)."""
    from drflow.operators.escalation import REFUSED_KEY

    ti = context["ti"]
    found: list[dict[str, Any]] = []
    for task in getattr(context.get("dag"), "tasks", None) or []:
        if task.task_id != record_task_id:
            found += list(ti.xcom_pull(task_ids=task.task_id, key=REFUSED_KEY) or [])
    return found


def steps_meta(dag: Any) -> dict[str, dict[str, Any]]:
    """What the DAG knows of each plan step (type, action, verification, timeout) that the API does not show."""
    from drflow.spec.types import parse_duration

    meta: dict[str, dict[str, Any]] = {}
    for task in getattr(dag, "tasks", None) or []:
        step = getattr(task, "definition", None)
        if isinstance(step, StepDefinition):
            meta[task.task_id] = {
                "type": step.type,
                "action": step.action,
                "verification": step.verification,
                "description": step.description,
                "timeout_s": parse_duration(step.timeout).total_seconds() if step.timeout else None,
            }
    return meta
