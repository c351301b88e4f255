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

    Writes the record (and the post-incident report beside it) under every affected component in every
    storage target of those components, each target on its own: a target that is down (the failed
    region's bucket) is logged and listed in the record (``store_failures``), and the task fails for it only
    when no target took the record (it is then in XCom). Returns the record (XCom). When the run failed and
    this task is not a teardown, it fails after writing the record, so the run's state says the recovery
    failed.
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
            keep_where(partial, self._store(partial, dag_run))
            context["ti"].xcom_push(key="return_value", value=partial)
            raise AirflowException(
                f"{exc}. A partial record (from this task's context only) is at {where(partial)}; "
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
        keep_where(record, self._store(record, dag_run))
        self._incident_report(record, dag_run)
        measured = record["recovery"]["measured_s"]
        self.log.info(
            "recovery record of %s: %s; recovery %s (RTO %s, met: %s); stored at %s",
            record["run_id"],
            record["outcome"],
            "not measured" if measured is None else human_duration(measured),
            human_duration(self.facts.rto_s),
            record["recovery"]["rto_met"],
            where(record),
        )
        for problem in record["problems"]:
            self.log.warning("%s", problem)
        publish_note(context, plan_run_note(record), self.facts.notes_conn_id, self.log)
        if record["outcome"] == "failed" and not self.is_teardown:
            context["ti"].xcom_push(key="return_value", value=record)
            raise AirflowFailException(
                f"recovery plan {record['plan']} did not recover: {'; '.join(record['problems'])}. The recovery "
                f"record is at {where(record)}; fix the failed step and clear it, or follow the runbook by hand"
            )
        if record["store_failures"] and not record["stored"]:
            context["ti"].xcom_push(key="return_value", value=record)
            raise AirflowException(
                f"the recovery record of run {record['run_id']} ({record['outcome']}) was stored in no storage "
                f"target: {failures_text(record['store_failures'])}. It is in this task's XCom (return_value); fix "
                "the target(s) or their connections, then clear this task to store it"
            )
        return record

    def _incident_report(self, record: dict[str, Any], dag_run: Any) -> None:
        """The post-incident report (Markdown) beside the record: `drflow incident-report` prints the same."""
        from drflow.audit.incident import incident_markdown
        from drflow.store.report_copies import first_key

        text = incident_markdown(record, sources=[f"the recovery record at {where(record)}"])
        self.log.info("post-incident report:\n%s", text)
        report = {"run_id": record["run_id"], "plan": record["plan"], "format": "markdown", "text": text}
        outcome = self._store(report, dag_run, kind=INCIDENT_KIND)
        record["incident_report_key"] = first_key(outcome)
        record["incident_store_failures"] = outcome["failed"]

    def _store(self, report: dict[str, Any], dag_run: Any, kind: str = REPORT_KIND) -> dict[str, Any]:
        """Write ``report`` under every affected component into every target of those components;
        ``{"written": {target: [keys]}, "failed": {target: why}}``."""
        from drflow.store.report_copies import write_everywhere

        targets = [target for facts in self.facts.components.values() for target in facts.targets]
        if not targets:
            self.log.warning(
                "no storage target among the plan's components: the %s is kept in XCom only; give a component "
                "a backup policy with a target to keep records in the store",
                kind,
            )
            return {"written": {}, "failed": {}}
        name = record_name(self.facts.plan, dag_run)
        outcome = write_everywhere(self.facts.spec, list(self.facts.components), kind, name, report, targets)
        for target, why in outcome["failed"].items():
            self.log.warning("the %s report %s was not stored in target %s: %s", kind, name, target, why)
        for target, keys in outcome["written"].items():
            self.log.info("the %s report %s is stored in target %s: %s", kind, name, target, ", ".join(keys))
        return outcome


def keep_where(record: dict[str, Any], outcome: dict[str, Any]) -> None:
    """Note in the record where it was stored (``stored``), where not and why (``store_failures``), and its
    first key (``report_key``, for the readers that open one copy)."""
    from drflow.store.report_copies import first_key

    record["stored"] = outcome["written"]
    record["store_failures"] = outcome["failed"]
    record["report_key"] = first_key(outcome)


def where(record: dict[str, Any]) -> str:
    """Where the record is, for logs and errors."""
    stored = record.get("stored") or {}
    text = f"{record['report_key']} (in {', '.join(stored)})" if stored else "XCom only"
    if record.get("store_failures"):
        text += f"; not stored in {failures_text(record['store_failures'])}"
    return text


def failures_text(failures: dict[str, str]) -> str:
    return "; ".join(f"{target} ({why})" for target, why in failures.items())


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
