"""Airflow notifiers for recovery-plan events: one per channel, and a fan-out one for deadline alerts.

Each notifier works synchronously (task and DAG callbacks) and asynchronously (deadline alerts run
in the triggerer and await the notifier; the blocking send then runs in a thread).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseNotifier

from drflow.notifiers.messages import Message, compose, facts_from_context

PLAN_KEYS = ("spec", "plan", "scenario", "rto_s", "rpo_s")


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


NOTIFIER_TYPES: dict[str, type[ChannelNotifier]] = {
    "slack": SlackNotifier,
    "webhook": WebhookNotifier,
    "smtp": SmtpNotifier,
}


def channel_notifier(
    name: str,
    channel: Mapping[str, Any],
    event: str,
    plan: Mapping[str, Any],
    *,
    message: str | None = None,
    outcome: str | None = None,
) -> ChannelNotifier:
    kind = channel.get("type")
    try:
        cls = NOTIFIER_TYPES[str(kind)]
    except KeyError:
        raise ValueError(
            f"notification channel {name!r} has type {kind!r}; use one of {', '.join(NOTIFIER_TYPES)}"
        ) from None
    return cls(
        channel=name,
        conn_id=str(channel["conn_id"]),
        event=event,
        plan=plan,
        to=list(channel.get("to") or []),
        message=message,
        outcome=outcome,
    )


class PlanEventNotifier(BaseNotifier):
    """Send one event to every channel of the plan that subscribes to it.

    Its arguments are flat strings because a deadline alert stores and hashes them
    (``AsyncCallback(PlanEventNotifier, kwargs={"event": ..., "plan_json": ...})``).
    Sends to every channel even when one fails, then raises naming the failed ones.
    """

    def __init__(self, *, event: str, plan_json: str, context: Any = None) -> None:
        super().__init__(context=context)
        self.event = event
        self.plan_json = plan_json

    def notify(self, context: Any) -> None:
        from drflow.notifiers import build_notifiers

        failures = []
        for notifier in build_notifiers(json.loads(self.plan_json), self.event):
            try:
                notifier.notify(context)
            except Exception as exc:
                self.log.error("channel %s failed: %s", notifier.channel, exc)
                failures.append(f"{notifier.channel}: {exc}")
        if failures:
            raise RuntimeError(f"{self.event} notification failed on " + "; ".join(failures))

    async def async_notify(self, context: Any) -> None:
        await asyncio.to_thread(self.notify, context)
