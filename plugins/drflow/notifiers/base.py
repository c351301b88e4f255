"""Airflow notifiers for recovery-plan events: one per channel, and a fan-out one for deadline alerts.

Each notifier works synchronously (task and DAG callbacks) and asynchronously (deadline alerts run
in the triggerer and await the notifier; the blocking send then runs in a thread).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseNotifier

from drflow.notifiers.messages import Message, compose, facts_from_context

PLAN_KEYS = ("spec", "plan", "scenario", "rto_s", "rpo_s", "service", "public_components", "internal_names")


class ChannelNotifier(BaseNotifier):
    """Send one plan event (or a step's own message) to one channel."""

    channel_type = ""

    def __init__(
        self,
        *,
        channel: str,
        conn_id: str,
        event: str,
        plan: Mapping[str, Any],
        to: Sequence[str] = (),
        message: str | None = None,
        outcome: str | None = None,
        context: Any = None,
    ) -> None:
        super().__init__(context=context)
        self.channel = channel
        self.conn_id = conn_id
        self.event = event
        self.plan = {k: plan.get(k) for k in PLAN_KEYS}
        self.to = list(to)
        self.message = message
        self.outcome = outcome

    def compose(self, context: Mapping[str, Any] | None) -> Message:
        facts = facts_from_context(context, with_record=self.event == "completion" and self.outcome is None)
        return compose(self.plan, self.event, facts, message=self.message, outcome=self.outcome)

    def notify(self, context: Any) -> None:
        message = self.compose(context)
        self.send(message)
        self.log.info("sent %s to %s channel %s", self.event, self.channel_type, self.channel)

    async def async_notify(self, context: Any) -> None:
        await asyncio.to_thread(self.notify, context)

    def send(self, message: Message) -> None:
        raise NotImplementedError


class SlackNotifier(ChannelNotifier):
    channel_type = "slack"

    def send(self, message: Message) -> None:
        from drflow.notifiers.channels import send_slack

        send_slack(self.conn_id, f"*{message.subject}*\n{message.text}")


class WebhookNotifier(ChannelNotifier):
    channel_type = "webhook"

    def send(self, message: Message) -> None:
        from drflow.notifiers.channels import send_webhook

        send_webhook(self.conn_id, message.payload(self.plan))


class SmtpNotifier(ChannelNotifier):
    channel_type = "smtp"

    def send(self, message: Message) -> None:
        from drflow.notifiers.channels import send_smtp

        send_smtp(self.conn_id, self.to, f"[drflow] {message.subject}", message.text)


INCIDENT_NAME = "Disruption of {components}"
"""The title of a run's Statuspage incident (public facts only, like the templates)."""


class StatuspageNotifier(ChannelNotifier):
    """Tell customers through a Statuspage page: one incident per run, the channel's templates, public facts only.

    Events map to templates: activation → incident (opened, `investigating`); status → update (`identified`);
    completion → resolution (`resolved`) when the run succeeded, update when it failed (the incident stays
    open for people to handle); a notify step → its `template`. Other events (approvals, failures,
    escalations) are for the operations team and never reach a status page. A rendered text that names an
    internal component is refused (the channel's failure path), not sent.
    """

    channel_type = "statuspage"

    def __init__(
        self, *, page_id: str, templates: Mapping[str, str | None], template: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.page_id = page_id
        self.templates = dict(templates)
        self.template = template
        self.result: dict[str, Any] | None = None

    def template_name(self, context: Mapping[str, Any] | None) -> str | None:
        if self.event == "message":
            return self.template
        if self.event == "completion":
            state = self.outcome or facts_from_context(context).state
            return "resolution" if state == "success" else "update"
        return {"activation": "incident", "status": "update"}.get(self.event)

    def notify(self, context: Any) -> None:
        from datetime import UTC, datetime

        from drflow.notifiers.statuspage import StatuspageApi, publish
        from drflow.public_text import PublicFacts, render

        template = self.template_name(context)
        text = self.templates.get(template) if template else None
        if template is None or not text:
            self.log.info("statuspage channel %s has no public message for %s: nothing sent", self.channel, self.event)
            return
        facts = facts_from_context(context)
        if not facts.dag_id or not facts.run_id:
            raise ValueError(f"statuspage channel {self.channel}: the callback context names no run; nothing sent")
        now = datetime.now(UTC)
        started = datetime.fromisoformat(facts.started_at) if facts.started_at else now
        public = PublicFacts(
            service=str(self.plan.get("service") or self.plan.get("spec")),
            components=list(self.plan.get("public_components") or []),
            started_at=started if started.tzinfo else started.replace(tzinfo=UTC),
            rto_s=int(self.plan.get("rto_s") or 0),
            now=now,
        )
        internal = self.plan.get("internal_names") or []
        body, name = render(text, public, internal), render(INCIDENT_NAME, public, internal)
        api = StatuspageApi(self.conn_id, self.page_id)
        done = publish(api, template, name, body, facts.dag_id, facts.run_id)
        self.result = {"channel": self.channel, "template": template, **done}
        self.log.info("statuspage channel %s: %s", self.channel, self.result)
        remember_incident(context, self.result)


NOTIFIER_TYPES: dict[str, type[ChannelNotifier]] = {
    "slack": SlackNotifier,
    "webhook": WebhookNotifier,
    "smtp": SmtpNotifier,
    "statuspage": StatuspageNotifier,
}


def channel_notifier(
    name: str,
    channel: Mapping[str, Any],
    event: str,
    plan: Mapping[str, Any],
    *,
    message: str | None = None,
    outcome: str | None = None,
    template: str | None = None,
) -> ChannelNotifier:
    """The notifier of one channel (``ChannelFacts.to_params()``); ``template``: a notify step's statuspage template."""
    kind = channel.get("type")
    try:
        cls = NOTIFIER_TYPES[str(kind)]
    except KeyError:
        raise ValueError(
            f"notification channel {name!r} has type {kind!r}; use one of {', '.join(NOTIFIER_TYPES)}"
        ) from None
    own: dict[str, Any] = {}
    if cls is StatuspageNotifier:
        own = {"page_id": str(channel["page_id"]), "templates": channel.get("templates") or {}, "template": template}
    return cls(
        channel=name,
        conn_id=str(channel["conn_id"]),
        event=event,
        plan=plan,
        to=list(channel.get("to") or []),
        message=message,
        outcome=outcome,
        **own,
    )


def build_notifiers(plan: Mapping[str, Any], event: str, *, outcome: str | None = None) -> list[ChannelNotifier]:
    """Notifiers for the plan's channels (``plan["notify"]``) that subscribe to ``event``.

    ``outcome`` fixes the state a ``completion`` message reports (``success`` on a DAG's success
    callback, ``failed`` on its failure callback); without it the dag run's state is used.
    """
    channels = plan.get("notifications") or {}
    notifiers: list[ChannelNotifier] = []
    for name in plan.get("notify") or []:
        channel = channels.get(name)
        if channel is None:
            logging.getLogger(__name__).warning(
                "plan %s notifies %r, which is not a notification channel of the spec", plan.get("plan"), name
            )
            continue
        if event in (channel.get("events") or []):
            notifiers.append(channel_notifier(name, channel, event, plan, outcome=outcome))
    return notifiers


def plan_event_json(plan: Mapping[str, Any]) -> str:
    """The part of the plan facts a notifier needs, as one JSON string (no secrets: conn ids only)."""
    names = list(plan.get("notify") or [])
    channels = plan.get("notifications") or {}
    subset = {k: plan.get(k) for k in PLAN_KEYS}
    subset["notify"] = names
    subset["notifications"] = {name: channels[name] for name in names if name in channels}
    return json.dumps(subset, sort_keys=True)


STATUSPAGE_KEY = "drflow_statuspage"
"""XCom key under which a task keeps what it did on status pages (the incident id, created or updated)."""
NOTIFICATION_FAILURES_KEY = "drflow_notification_failures"
"""XCom key under which a task keeps the notifications it could not deliver (the recovery record reads it)."""
ENDED_RUN_STATES = frozenset({"success", "failed"})


class PlanEventNotifier(BaseNotifier):
    """Send one event to every channel of the plan that subscribes to it. It never raises.

    A notification never blocks a recovery: a channel that cannot be reached (no connection, refused,
    an HTTP error) is logged, told to the plan's other channels, and kept in the task's XCom
    (``drflow_notification_failures``) for the recovery record; the task goes on.
    A ``deadline-missed`` for a run that has already ended is not sent (Airflow prunes a run's deadline
    when it succeeds, not when it fails).

    Its arguments are flat strings because a deadline alert stores and hashes them
    (``AsyncCallback(PlanEventNotifier, kwargs={"event": ..., "plan_json": ...})``).
    """

    def __init__(self, *, event: str, plan_json: str, outcome: str | None = None, context: Any = None) -> None:
        super().__init__(context=context)
        self.event = event
        self.plan_json = plan_json
        self.outcome = outcome

    def notify(self, context: Any) -> None:
        plan = json.loads(self.plan_json)
        if self.event == "deadline-missed" and (state := run_state(context)) in ENDED_RUN_STATES:
            self.log.info(
                "the RTO deadline of plan %s passed after its run had ended (%s): no deadline-missed message",
                plan.get("plan"),
                state,
            )
            return
        failures: list[dict[str, str]] = []
        for notifier in build_notifiers(plan, self.event, outcome=self.outcome):
            try:
                notifier.notify(context)
            except Exception as exc:  # a channel never stops the plan: log it, tell the others, record it
                self.log.error(
                    "notification channel %s (connection %s) could not deliver %s: %s; the plan goes on",
                    notifier.channel,
                    notifier.conn_id,
                    self.event,
                    exc,
                )
                failures.append(
                    {"event": self.event, "channel": notifier.channel, "conn_id": notifier.conn_id, "error": str(exc)}
                )
        if failures:
            report_elsewhere(plan, failures, context)
            remember_failures(context, failures)

    async def async_notify(self, context: Any) -> None:
        await asyncio.to_thread(self.notify, context)


def notifiers_for(plan: dict[str, Any], event: str, *, outcome: str | None = None) -> list[Any]:
    """One notifier that sends `event` to the plan's channels that listen to it; none when no channel does.

    It never raises: a channel that cannot be reached is logged, reported on the other channels and in
    the recovery record, and the task (a declaration asking for approval, say) goes on.
    """
    if not plan.get("notify"):
        return []
    if not build_notifiers(plan, event):
        return []
    return [PlanEventNotifier(event=event, plan_json=plan_event_json(plan), outcome=outcome)]


def report_elsewhere(plan: Mapping[str, Any], failures: list[dict[str, str]], context: Any) -> None:
    """Tell the plan's channels that did not fail that some could not be reached."""
    failed = {f["channel"] for f in failures}
    channels = plan.get("notifications") or {}
    text = failure_text(failures)
    for name in plan.get("notify") or []:
        if name in failed or name not in channels:
            continue
        try:
            channel_notifier(name, channels[name], "notification-failed", plan, message=text).notify(context)
        except Exception as exc:
            logging.getLogger(__name__).error("channel %s could not report the failure either: %s", name, exc)


def failure_text(failures: Sequence[Mapping[str, str]]) -> str:
    lines = "; ".join(f"{f['channel']} (connection {f['conn_id']}): {f['error']}" for f in failures)
    return (
        f"drflow could not deliver the {failures[0]['event']} notification to {lines}. The recovery goes on; "
        "fix the connection so that channel hears the rest of the run."
    )


def run_state(context: Any) -> str | None:
    """The run's state from a task context (an object) or a deadline callback's context (JSON)."""
    dag_run = (context or {}).get("dag_run") if isinstance(context, Mapping) else None
    state = dag_run.get("state") if isinstance(dag_run, Mapping) else getattr(dag_run, "state", None)
    return str(getattr(state, "value", state)) if state is not None else None


def remember_failures(context: Any, failures: list[dict[str, str]]) -> None:
    """Keep the failures in the task's XCom, after those an earlier event of the same task kept."""
    ti = context.get("ti") if isinstance(context, Mapping) else None
    if ti is None or not hasattr(ti, "xcom_push"):
        return  # a deadline callback or a DAG callback: the log is all there is
    try:
        earlier = ti.xcom_pull(task_ids=ti.task_id, key=NOTIFICATION_FAILURES_KEY) or []
        ti.xcom_push(key=NOTIFICATION_FAILURES_KEY, value=[*earlier, *failures])
    except Exception as exc:  # the record then lacks them; the log above has them
        logging.getLogger(__name__).warning("could not keep the notification failures in XCom: %s", exc)


def remember_incident(context: Any, result: Mapping[str, Any]) -> None:
    """Keep what a status-page call did (its incident id) in the task's XCom, when a task ran it."""
    ti = context.get("ti") if isinstance(context, Mapping) else None
    if ti is None or not hasattr(ti, "xcom_push"):
        return  # a DAG callback: the log has it
    try:
        earlier = ti.xcom_pull(task_ids=ti.task_id, key=STATUSPAGE_KEY) or []
        ti.xcom_push(key=STATUSPAGE_KEY, value=[*earlier, dict(result)])
    except Exception as exc:
        logging.getLogger(__name__).warning("could not keep the status-page incident in XCom: %s", exc)
