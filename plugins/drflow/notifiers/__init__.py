"""Notifications of recovery-plan runs: Slack webhook, SMTP and generic webhook channels.

``build_notifiers(plan, event)`` is what the renderer attaches to callbacks; ``deadline_callback(plan)``
is the callback of the RTO deadline alert. Building a notifier touches no network or connection:
that happens only when it sends.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from drflow.notifiers.base import (
    PLAN_KEYS,
    ChannelNotifier,
    PlanEventNotifier,
    SlackNotifier,
    SmtpNotifier,
    WebhookNotifier,
    channel_notifier,
)

__all__ = [
    "ChannelNotifier",
    "PlanEventNotifier",
    "SlackNotifier",
    "SmtpNotifier",
    "WebhookNotifier",
    "build_notifiers",
    "channel_notifier",
    "deadline_callback",
    "plan_event_json",
]

log = logging.getLogger(__name__)


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
            log.warning("plan %s notifies %r, which is not a notification channel of the spec", plan.get("plan"), name)
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


def deadline_callback(plan: Mapping[str, Any], event: str = "deadline-missed") -> Any:
    """An ``AsyncCallback`` for ``DeadlineAlert(callback=...)`` that tells the plan's channels.

    The triggerer runs it, so a DAG with a deadline needs a running triggerer.
    """
    from airflow.sdk.definitions.callback import AsyncCallback

    return AsyncCallback(PlanEventNotifier, kwargs={"event": event, "plan_json": plan_event_json(plan)})
