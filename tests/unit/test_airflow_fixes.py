"""drflow's fix of Airflow 3.3's clear (apache/airflow#70368): reading a stored deadline alert, when it applies.

End to end (a real clear through the REST API): tests/e2e/test_clear_retry_e2e.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import airflow.models.taskinstance as taskinstance
import pytest
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from airflow.serialization.encoders import encode_deadline_alert

from drflow.dashboard import airflow_fixes
from drflow.dashboard.airflow_fixes import alert_timing, apply, recalculate_queued_at_deadlines
from drflow.render.callbacks import deadline_alert


def _stored(alert: Any) -> dict[str, Any]:
    """The alert as Airflow 3.3 writes it to `deadline_alert` (what DagRun creation reads back)."""
    return encode_deadline_alert(alert)


def test_the_interval_is_read_from_airflow_33s_envelope_and_from_an_older_bare_number() -> None:
    stored = _stored(deadline_alert({"plan": "failover", "notify": []}, 3600))
    assert stored["interval"]["__classname__"] == "datetime.timedelta"  # the form Airflow's own clear cannot read
    assert alert_timing(stored["reference"], stored["interval"], stored["callback"]) == (timedelta(hours=1), True)
    assert alert_timing(stored["reference"], 1800.0, stored["callback"]) == (timedelta(minutes=30), True)
    assert alert_timing(stored["reference"], 90, stored["callback"])[0] == timedelta(seconds=90)


def test_only_drflows_own_deadline_is_an_rto() -> None:
    from airflow.sdk.definitions.callback import AsyncCallback

    other = DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=10),
        callback=AsyncCallback("airflow.providers.standard.notifications.hitl.HITLNotifier"),
    )
    stored = _stored(other)
    assert alert_timing(stored["reference"], stored["interval"], stored["callback"]) == (timedelta(minutes=10), False)


@pytest.mark.parametrize(
    ("version", "affected"),
    [("3.2.1", False), ("3.3.0", True), ("3.3.2", True), ("3.3.3rc1", True), ("3.4.0", False), ("4.0.0", False)],
)
def test_only_airflow_33_is_patched(version: str, affected: bool) -> None:
    assert airflow_fixes._affected(version) is affected


def test_apply_replaces_the_function_once_and_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    original = taskinstance._recalculate_dagrun_queued_at_deadlines
    monkeypatch.setattr(taskinstance, "_recalculate_dagrun_queued_at_deadlines", original)  # restored after

    monkeypatch.setenv("DRFLOW_AIRFLOW_FIXES", "off")
    assert apply() is False and taskinstance._recalculate_dagrun_queued_at_deadlines is original

    monkeypatch.delenv("DRFLOW_AIRFLOW_FIXES")
    assert apply() is True and apply() is True
    assert taskinstance._recalculate_dagrun_queued_at_deadlines is recalculate_queued_at_deadlines


def test_a_changed_airflow_function_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def fixed_upstream(dagrun: Any, session: Any) -> None: ...

    monkeypatch.setattr(taskinstance, "_recalculate_dagrun_queued_at_deadlines", fixed_upstream)
    assert apply() is False
    assert taskinstance._recalculate_dagrun_queued_at_deadlines is fixed_upstream

    monkeypatch.delattr(taskinstance, "_recalculate_dagrun_queued_at_deadlines")
    assert apply() is False
