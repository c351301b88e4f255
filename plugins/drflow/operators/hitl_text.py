"""What the people's tasks show and read: HITL users, answers as JSON, the run header and assessments as Markdown."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from airflow.sdk.execution_time.hitl import HITLUser

from drflow.contracts import PlanFacts
from drflow.units import human_duration

COMMENT = "comment"


def triggering_user(context: Mapping[str, Any]) -> str | None:
    dag_run = context.get("dag_run")
    return getattr(dag_run, "triggering_user_name", None) if dag_run is not None else None


# Runs started by a person logged in to Airflow; every other way (CLI: the OS user name, dag.test,
# schedules, assets, TriggerDagRunOperator) names nobody the auth manager vouched for.
def hitl_users(names: Sequence[str]) -> list[HITLUser]:
    # HITL users are matched by id; the simple auth manager's id is the user name.
    return [HITLUser(id=name, name=name) for name in names]


def user_name(user: Any) -> str | None:
    if isinstance(user, Mapping):
        return str(user.get("name") or user.get("id") or "") or None
    return str(user) if user else None


def timed_out(event: Mapping[str, Any]) -> bool:
    """No answer in time: Airflow resumes the task with a timeout error (no defaults) or the defaults (timedout)."""
    return event.get("error_type") == "timeout" or bool(event.get("timedout"))


def answer_of(event: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a HITL response the recovery record needs, as JSON."""
    at = event.get("responded_at")
    return {
        "chosen": list(event.get("chosen_options") or []),
        "by": user_name(event.get("responded_by_user")),
        "at": at.isoformat() if isinstance(at, datetime) else at,
        "timed_out": timed_out(event),
        "comment": str((event.get("params_input") or {}).get(COMMENT) or "").strip(),
    }


def run_header(context: Mapping[str, Any], plan: PlanFacts) -> list[str]:
    """Who triggered the run and why, as Markdown lines shown above every question."""
    params = context.get("params") or {}
    lines = [
        f"**Plan** `{plan.plan}` ({plan.scenario}) · **triggered by** "
        f"{triggering_user(context) or 'unknown'} · **RTO** {human_duration(plan.rto_s)} · "
        f"**RPO** {human_duration(plan.rpo_s)}",
        "",
        f"**Reason**: {params.get('reason') or '(none given)'}",
    ]
    if params.get("notes"):
        lines += ["", f"**Notes**: {params['notes']}"]
    for key, label in (
        ("target_region", "Target region"),
        ("target_time", "Target time"),
        ("incident_started_at", "Incident started at"),
    ):
        if params.get(key):
            lines += ["", f"**{label}**: {params[key]}"]
    if params.get("override_safety"):
        lines += [
            "",
            "**Safety override requested**: promotion checks (lag, recovery state, fencing) may be overridden. "
            "Approve only if you approve that override.",
        ]
    return lines


def format_assessment(task_id: str, result: Any) -> list[str]:
    """An assessment's XCom as Markdown: its `summary` if it has one, else its fields."""
    lines = [f"#### {task_id}"]
    if result is None:
        return [*lines, "_no assessment result (the task left nothing in XCom)_"]
    if not isinstance(result, Mapping):
        return [*lines, str(result)]
    if isinstance(result.get("summary"), str):
        return [*lines, result["summary"]]
    for key, value in result.items():
        if isinstance(value, str | int | float | bool) or value is None:
            text = str(value)
        elif isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
            text = ", ".join(str(v) for v in value) or "none"
        else:
            text = f"`{json.dumps(value, default=str)[:400]}`"
        lines.append(f"- **{key}**: {text}")
    return lines
