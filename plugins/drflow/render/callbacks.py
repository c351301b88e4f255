"""Notifications of recovery-plan runs, wired into Airflow: task and DAG callbacks, the RTO deadline alert.

The channels come from `drflow.notifiers` (`notifiers_for(plan_facts, event)`, `deadline_callback`);
building them touches no network, so this runs at DAG-parse time.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

DEADLINES_ENV = "DRFLOW_DEADLINES"
"""`off` renders recovery plans without their deadline alert: dag.test() fails after the run of a DAG
that has one (apache/airflow#73428)."""


def deadlines_enabled() -> bool:
    return os.environ.get(DEADLINES_ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def deadline_alert(plan: dict[str, Any], seconds: int) -> Any:
    """A deadline `seconds` after the run was queued; missing it sends the plan's `deadline-missed` message.

    The triggerer runs the callback, so the deadline needs a running triggerer.
    """
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    from drflow.notifiers import deadline_callback

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=seconds),
        callback=deadline_callback(plan),
        name=f"RTO of plan {plan.get('plan')}",
    )


def completion_callbacks(plan: dict[str, Any]) -> dict[str, Any]:
    """DAG-level callbacks that send `completion` when the run ends, with its outcome."""
    if not plan.get("notify"):
        return {}  # the notifiers (and Airflow's notifier base) stay unimported
    from drflow.notifiers import notifiers_for

    callbacks: dict[str, Any] = {}
    for when, outcome in (("on_success_callback", "success"), ("on_failure_callback", "failed")):
        if notifiers := notifiers_for(plan, "completion", outcome=outcome):
            callbacks[when] = notifiers
    return callbacks
