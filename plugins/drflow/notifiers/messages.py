"""What a plan notification says: the facts of the run, taken from any Airflow callback context.

Airflow hands callbacks different contexts: a task's template context (task callbacks, DAG
callbacks in the dag-processor) or, for missed deadlines, a small dict with the dag run as JSON.
:func:`facts_from_context` reads both; :func:`compose` turns the facts into a message that says what
happened and what to do next. Nothing here imports Airflow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from drflow.units import human_duration
from drflow.when import stored_time

DEFAULT_BASE_URL = "http://localhost:8080"
ERROR_CHARS = 500


@dataclass(frozen=True)
class RunFacts:
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    try_number: int | None = None
    state: str | None = None
    reason: str | None = None
    """The reason typed into the trigger form (not Airflow's callback reason)."""
    notes: str | None = None
    triggered_by: str | None = None
    started_at: str | None = None
    error: str | None = None
    deadline: str | None = None
    assignees: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    """A question's answers, the one to do first (Approve, Done) first: the link highlights it."""
    record: dict[str, Any] | None = None
    """The recovery record, when the context is the record task's (completion events)."""


@dataclass(frozen=True)
class Message:
    event: str
    subject: str
    text: str
    facts: RunFacts
    url: str | None

    def payload(self, plan: Mapping[str, Any]) -> dict[str, Any]:
        """The generic webhook body."""
        return {
            "event": self.event,
            "spec": plan.get("spec"),
            "plan": plan.get("plan"),
            "scenario": plan.get("scenario"),
            "dag_id": self.facts.dag_id,
            "run_id": self.facts.run_id,
            "task_id": self.facts.task_id,
            "reason": self.facts.reason,
            "state": self.facts.state,
            "url": self.url,
            "subject": self.subject,
            "text": self.text,
            "facts": asdict(self.facts),
        }


def base_url() -> str:
    url = os.environ.get("AIRFLOW__API__BASE_URL")
    if not url:
        try:
            from airflow.configuration import conf

            url = conf.get("api", "base_url", fallback=DEFAULT_BASE_URL)
        except Exception:  # no Airflow configuration here: the default is still a usable hint
            url = DEFAULT_BASE_URL
    return (url or DEFAULT_BASE_URL).rstrip("/")


def run_url(facts: RunFacts) -> str | None:
    if not facts.dag_id:
        return None
    url = f"{base_url()}/dags/{quote(facts.dag_id, safe='')}"
    if facts.run_id:
        url += f"/runs/{quote(facts.run_id, safe='')}"
        if facts.task_id:
            url += f"/tasks/{quote(facts.task_id, safe='')}"
    return url


def facts_from_context(context: Mapping[str, Any] | None, *, with_record: bool = False) -> RunFacts:
    """``with_record`` also reads the task's own XCom result: the recovery record, on the record task."""
    context = context or {}
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    task = context.get("task")
    dag = context.get("dag")

    dag_id = _attr(dag_run, "dag_id") or _attr(dag, "dag_id") or _attr(ti, "dag_id")
    run_id = _attr(dag_run, "run_id") or _attr(dag_run, "dag_run_id") or context.get("run_id") or _attr(ti, "run_id")
    conf = _attr(dag_run, "conf") or {}
    params = context.get("params") or {}
    reason = params.get("reason") if isinstance(params, Mapping) else None
    notes = params.get("notes") if isinstance(params, Mapping) else None
    if isinstance(conf, Mapping):
        reason = reason or conf.get("reason")
        notes = notes or conf.get("notes")
    exception = context.get("exception")
    deadline = context.get("deadline")
    assignees = _attr(task, "assigned_users") or []
    options = _attr(task, "options") or []
    return RunFacts(
        dag_id=_str(dag_id),
        run_id=_str(run_id),
        task_id=_str(_attr(ti, "task_id")),
        try_number=_int(_attr(ti, "try_number")),
        state=_str(_attr(dag_run, "state")),
        reason=_str(reason),
        notes=_str(notes),
        triggered_by=_str(_attr(dag_run, "triggering_user_name")),
        started_at=_iso(_run_start_value(dag_run)),
        error=str(exception)[:ERROR_CHARS] if exception else None,
        deadline=_iso(_attr(deadline, "deadline_time")),
        assignees=[_user_name(u) for u in assignees] if isinstance(assignees, list | tuple) else [],
        options=[str(o) for o in options] if isinstance(options, list | tuple) else [],
        record=_own_result(ti) if with_record else None,
    )


def _own_result(ti: Any) -> dict[str, Any] | None:
    pull = getattr(ti, "xcom_pull", None)
    if pull is None:
        return None
    try:
        value = pull(task_ids=ti.task_id)
    except Exception:  # no XCom backend reachable here: report without the record
        return None
    return value if isinstance(value, dict) and "outcome" in value else None


def compose(
    plan: Mapping[str, Any],
    event: str,
    facts: RunFacts,
    *,
    message: str | None = None,
    outcome: str | None = None,
) -> Message:
    """The subject and text of one notification. ``message`` is a plan step's own text."""
    name = plan.get("plan") or facts.dag_id or "DR plan"
    title = f"DR plan {name}" + (f" ({plan['scenario']})" if plan.get("scenario") else "")
    of_spec = f" of {plan['spec']}" if plan.get("spec") else ""
    url = run_url(facts)
    run_link = url.rsplit("/tasks/", 1)[0] if url else None
    who = facts.triggered_by or "someone"
    reason = f' Reason: "{facts.reason}".' if facts.reason else ""
    state = outcome or facts.state

    if event == "activation":
        subject = f"{title} activated"
        text = (
            f"{title}{of_spec} was activated by {who}.{reason} "
            f"Next: an approver must declare the disaster before anything changes; follow the run at {run_link}."
        )
    elif event == "approval-needed":
        users = ", ".join(facts.assignees) if facts.assignees else "the plan's approvers"
        subject = f"{title}: approval needed"
        text = (
            f"Approval needed: {users} open {answer_url(url, facts.options)} and approve or refuse "
            f"{facts.task_id or 'the approval'} of {title}{of_spec}.{reason} Requested by {who}; "
            f"the approver must be someone else. Nothing changes until someone approves."
        )
    elif event == "step-failed":
        subject = f"{title}: step {facts.task_id} failed"
        tries = f" (try {facts.try_number})" if facts.try_number else ""
        text = (
            f"Step {facts.task_id} of {title}{of_spec} failed{tries}: {facts.error or 'see the log'}. "
            f"Next: read the log at {url}; fix the cause and clear the task to retry it, "
            f"or follow the plan's runbook by hand."
        )
    elif event == "deadline-missed":
        rto = _duration(plan.get("rto_s"))
        subject = f"{title}: RTO {rto} missed"
        text = (
            f"{title}{of_spec} missed its recovery time objective of {rto}: the run started at "
            f"{facts.started_at or 'an unknown time'} and was not finished by {facts.deadline or 'the deadline'}. "
            f"Next: escalate to the incident lead and check which step holds the run at {run_link}."
        )
    elif event == "completion":
        subject, text = _completion(title, of_spec, reason, run_link, state, facts.record)
    else:
        subject = f"{title}: {event}"
        text = f"{message or event} ({title}{of_spec}, run {facts.run_id}: {run_link})"
    if message and event in ("activation", "approval-needed", "step-failed", "deadline-missed", "completion"):
        text = f"{message}\n{text}"
    return Message(event=event, subject=subject, text=text, facts=facts, url=url)


def answer_url(url: str | None, options: list[str]) -> str:
    """The task's question; Airflow's page highlights the options given as `_options` (the first one here)."""
    page = f"{url}/required_actions"
    return f"{page}?_options={quote(json.dumps(options[:1]), safe='')}" if options else page


def _completion(
    title: str, of_spec: str, reason: str, run_link: str | None, state: str | None, record: Mapping[str, Any] | None
) -> tuple[str, str]:
    if record is None:
        if state == "success":
            what_next = (
                "Next: read the recovery record (the record task's XCom, or the store's recovery reports) "
                "and plan the failback once the primary side is healthy."
            )
        else:
            what_next = f"Next: open {run_link}, see which step failed and decide what to retry."
        return (
            f"{title} finished: {state or 'done'}",
            f"{title}{of_spec} finished with state {state or 'unknown'}.{reason} {what_next}",
        )
    outcome = str(record.get("outcome"))
    recovery = record.get("recovery") or {}
    where = f" The recovery record: {record.get('report_key') or 'in XCom of the record task'}."
    if outcome == "recovered":
        met = recovery.get("rto_met")
        verdict = "met" if met else "MISSED" if met is False else "not judged"
        text = (
            f"{title}{of_spec} recovered in {_human(recovery.get('measured_s'))} "
            f"(RTO {_duration(recovery.get('rto_s'))} {verdict}).{reason}{where} "
            f"Next: check the service, then plan the failback once the primary side is healthy."
        )
    elif outcome == "refused":
        who = ", ".join(a.get("by") or "?" for a in record.get("approvals") or [] if a.get("decision") == "refused")
        text = (
            f"{title}{of_spec}: the disaster declaration was refused by {who or 'an approver'}; nothing was "
            f"changed.{reason}{where} Next: if the incident goes on, trigger the plan again with more detail, "
            f"or follow another plan."
        )
    else:
        problems = "; ".join(record.get("problems") or []) or "see the run"
        text = (
            f"{title}{of_spec} did not recover ({outcome}): {problems}.{reason}{where} "
            f"Next: open {run_link}, fix the failed step and clear it, or continue by hand from the runbook."
        )
    return f"{title} finished: {outcome}", text


def _human(seconds: Any) -> str:
    try:
        total = round(float(seconds))
    except (TypeError, ValueError):
        return "an unknown time"
    return human_duration(total)


def run_started_at(dag_run: Any) -> datetime | None:
    """When the run started: the earlier of its `run_after` (the trigger) and its start. A clear moves the
    start (and `queued_at`) to the clear's time; the RTO runs from the first one."""
    return stored_time(_run_start_value(dag_run))


def _run_start_value(dag_run: Any) -> Any:
    values = [v for v in (_attr(dag_run, n) for n in ("run_after", "start_date")) if stored_time(v) is not None]
    return min(values, key=lambda v: stored_time(v) or datetime.max) if values else None


def _attr(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return _str(value)


def _user_name(user: Any) -> str:
    if isinstance(user, Mapping):
        return str(user.get("name") or user.get("id"))
    return str(_attr(user, "name") or _attr(user, "id") or user)


def _duration(seconds: Any) -> str:
    try:
        return human_duration(int(seconds))
    except (TypeError, ValueError):
        return "unknown"
