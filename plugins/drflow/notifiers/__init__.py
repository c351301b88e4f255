"""Notifications of recovery-plan runs: Slack webhook, SMTP, generic webhook and Statuspage channels.

``build_notifiers(plan, event)`` is what the renderer attaches to callbacks; ``deadline_callback(plan)``
is the callback of the RTO deadline alert. Building a notifier touches no network or connection:
that happens only when it sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drflow.notifiers.base import (
    ChannelNotifier,
    PlanEventNotifier,
    SlackNotifier,
    SmtpNotifier,
    StatuspageNotifier,
    WebhookNotifier,
    build_notifiers,
    channel_notifier,
    notifiers_for,
    plan_event_json,
)

__all__ = [
    "ChannelNotifier",
    "PlanEventNotifier",
    "SlackNotifier",
    "SmtpNotifier",
    "StatuspageNotifier",
    "WebhookNotifier",
    "build_notifiers",
    "channel_notifier",
    "deadline_callback",
    "notifiers_for",
    "plan_event_json",
]


def deadline_callback(plan: Mapping[str, Any], event: str = "deadline-missed") -> Any:
    """An ``AsyncCallback`` for ``DeadlineAlert(callback=...)`` that tells the plan's channels.

    The triggerer runs it, so a DAG with a deadline needs a running triggerer.
    """
    from airflow.sdk.definitions.callback import AsyncCallback

    return AsyncCallback(PlanEventNotifier, kwargs={"event": event, "plan_json": plan_event_json(plan)})
