"""Check-only twins of the steps people take part in: the declaration, approvals, manual steps, notifications.

Who decides must be named (and, with four eyes, more than one person), every notification channel's
Airflow connection and the audit connection (the record and the four-eyes check read Airflow's API through
it) must be defined, and a statuspage channel's templates must render with the plan's public facts.
Connections are looked up, never used: a test message would page people (or tell customers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drflow.contracts import ChannelFacts, PlanFacts, StepDefinition


def connection_problem(conn_id: str) -> str:
    """Why Airflow connection ``conn_id`` cannot be used, or an empty string when it is defined."""
    from drflow.connections import get_connection

    try:
        get_connection(conn_id)
    except Exception as exc:  # Airflow raises its own not-found type; any failure means "not usable"
        text = str(exc).strip() or type(exc).__name__
        return text if conn_id in text else f"Airflow connection {conn_id!r} is not usable: {text}"
    return ""


def approvers_ready(step: StepDefinition, who: str) -> dict[str, Any]:
    people = list(step.approvers if who == "approvers" else step.assignees)
    if not people:
        return {"ok": False, "detail": f"nobody is named to answer step '{step.name}'"}
    if who == "approvers" and step.four_eyes and len(set(people)) < 2:
        return {
            "ok": False,
            "detail": f"four eyes with a single approver ({people[0]}): a run {people[0]} triggers can never pass; "
            "name a second approver",
        }
    eyes = " (four eyes)" if who == "approvers" and step.four_eyes else ""
    return {"ok": True, "detail": f"{who} named: {', '.join(people)}{eyes}"}


def channels_ready(plan: PlanFacts, channels: Sequence[str]) -> dict[str, Any]:
    problems, fine = [], []
    for name in channels:
        channel = plan.notifications.get(name)
        if channel is None:
            problems.append(f"channel {name!r} is not among the spec's notifications")
            continue
        problem = connection_problem(channel.conn_id) or templates_problem(plan, channel)
        if problem:
            problems.append(f"channel {name} ({channel.type}): {problem}; the plan goes on, but nobody is told there")
        else:
            rendered = f", {len(template_names(channel))} templates render" if channel.templates else ""
            fine.append(f"{name} ({channel.type}, connection {channel.conn_id}{rendered})")
    if problems:
        return {"ok": False, "detail": "; ".join(problems)}
    return {"ok": True, "detail": "channels configured: " + (", ".join(fine) or "none to tell")}


def declaration_ready(step: StepDefinition, plan: PlanFacts) -> dict[str, Any]:
    """Approvers named (two with four eyes), the audit connection and the plan's channels defined."""
    results = [approvers_ready(step, "approvers")]
    audit = connection_problem(plan.audit_conn_id)
    why = "the recovery record and the four-eyes check read Airflow's REST API through it"
    results.append(
        {"ok": False, "detail": f"{audit} ({why})"}
        if audit
        else {"ok": True, "detail": f"audit connection {plan.audit_conn_id} defined"}
    )
    results.append(channels_ready(plan, list(plan.notify)))
    return {"ok": all(r["ok"] for r in results), "detail": "; ".join(r["detail"] for r in results)}


def template_names(channel: ChannelFacts) -> list[str]:
    from drflow.public_text import TEMPLATE_NAMES

    return [name for name in TEMPLATE_NAMES if channel.templates and channel.templates.named(name)]


def templates_problem(plan: PlanFacts, channel: ChannelFacts) -> str:
    """Why a statuspage channel's templates would not render with the plan's public facts (nothing is sent)."""
    from datetime import UTC, datetime

    from drflow.public_text import TemplateError

    now = datetime.now(UTC)
    for name in template_names(channel):
        try:
            plan.public_text(str(channel.templates.named(name) if channel.templates else ""), now, now)
        except TemplateError as exc:
            return f"template {name} would not be sent: {exc}"
    return ""
