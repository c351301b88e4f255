"""Plan notifications delivered to real receivers: an HTTP server (Slack, webhook) and an SMTP server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as EmailMessage
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG

from drflow.notifiers import PlanEventNotifier, build_notifiers, plan_event_json
from drflow.notifiers.messages import compose, facts_from_context
from drflow.operators.notify import NotifyOperator
from tests.fixtures.s3 import free_port
from tests.integration.http_receiver import HttpReceiver, http_receiver  # noqa: F401
from tests.plan_inputs import step_params

BASE_URL = "http://airflow.example.com:8080"


def _plan(**channels: dict[str, Any]) -> dict[str, Any]:
    return {
        "spec": "notify-test",
        "plan": "region-failover",
        "scenario": "infrastructure-failure",
        "rto_s": 1800,
        "rpo_s": 300,
        "components": {},
        "notifications": channels,
        "notify": list(channels),
    }


def _task_context(task_id: str = "promote-replica", **extra: Any) -> dict[str, Any]:
    """The parts of an Airflow task context that notifiers read, as the task SDK hands them over."""
    return {
        "dag": DAG("dr.notify-test.plan.region-failover", schedule=None),
        "dag_run": SimpleNamespace(
            dag_id="dr.notify-test.plan.region-failover",
            run_id="manual__2026-11-27T10:00:00+00:00",
            state="running",
            conf={"reason": "us-east-1 is down (INC-7)"},
            triggering_user_name="alice",
            start_date=None,
        ),
        "ti": SimpleNamespace(task_id=task_id, try_number=2),
        "params": {"reason": "us-east-1 is down (INC-7)", "notes": ""},
        **extra,
    }


@pytest.fixture(autouse=True)
def base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)


@pytest.fixture
def channels(http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:  # noqa: F811
    # Slack: the webhook URL in the password (the secret part stays masked).
    monkeypatch.setenv(
        "AIRFLOW_CONN_DRFLOW_TEST_SLACK",
        json.dumps({"conn_type": "http", "password": f"{http_receiver.base_url}/services/T0/B0/SECRET"}),
    )
    # Slack again, the URL as host.
    monkeypatch.setenv(
        "AIRFLOW_CONN_DRFLOW_TEST_SLACK_HOST",
        json.dumps({"conn_type": "http", "host": f"{http_receiver.base_url}/services/T1/B1/OTHER"}),
    )
    # Webhook: the whole URL (port included) as host, basic auth from login/password.
    monkeypatch.setenv(
        "AIRFLOW_CONN_DRFLOW_TEST_HOOK",
        json.dumps(
            {
                "conn_type": "http",
                "host": f"{http_receiver.base_url}/dr-events",
                "login": "drflow",
                "password": "hook-pass",
            }
        ),
    )
    return {
        "ops-slack": {
            "type": "slack",
            "conn_id": "drflow_test_slack",
            "to": [],
            "events": ["approval-needed", "step-failed"],
        },
        "status-slack": {"type": "slack", "conn_id": "drflow_test_slack_host", "to": [], "events": ["completion"]},
        "pager": {
            "type": "webhook",
            "conn_id": "drflow_test_hook",
            "to": [],
            "events": ["step-failed", "deadline-missed"],
        },
    }


def test_build_notifiers_picks_the_channels_that_subscribe_to_the_event(channels: dict[str, Any]) -> None:
    plan = _plan(**channels)
    assert [n.channel for n in build_notifiers(plan, "step-failed")] == ["ops-slack", "pager"]
    assert [n.channel for n in build_notifiers(plan, "completion")] == ["status-slack"]
    assert build_notifiers(plan, "activation") == []
    assert build_notifiers({**plan, "notify": ["pager"]}, "approval-needed") == []


def test_step_failed_reaches_slack_and_the_webhook(http_receiver: HttpReceiver, channels: dict[str, Any]) -> None:  # noqa: F811
    context = _task_context(exception=RuntimeError("replica lag 900s exceeds the RPO of 300s"))
    for notifier in build_notifiers(_plan(**channels), "step-failed"):
        notifier(context)

    [slack] = http_receiver.on("/services/T0/B0/SECRET")
    text = slack.json()["text"]
    assert "Step promote-replica of DR plan region-failover" in text
    assert "failed (try 2): replica lag 900s exceeds the RPO of 300s" in text
    run_path = "/dags/dr.notify-test.plan.region-failover/runs/manual__2026-11-27T10%3A00%3A00%2B00%3A00"
    task_url = f"{BASE_URL}{run_path}/tasks/promote-replica"
    assert f"Next: read the log at {task_url}" in text

    [hook] = http_receiver.on("/dr-events")
    assert hook.headers["Authorization"].startswith("Basic ")
    body = hook.json()
    assert body["event"] == "step-failed" and body["plan"] == "region-failover"
    assert body["run_id"] == "manual__2026-11-27T10:00:00+00:00" and body["task_id"] == "promote-replica"
    assert body["reason"] == "us-east-1 is down (INC-7)" and body["url"] == task_url
    assert body["state"] == "running"


def test_approval_needed_names_the_approvers_and_links_the_form(
    http_receiver: HttpReceiver,  # noqa: F811
    channels: dict[str, Any],
) -> None:
    task = SimpleNamespace(assigned_users=[{"id": "bob", "name": "bob"}, {"id": "carol", "name": "carol"}])
    [notifier] = build_notifiers(_plan(**channels), "approval-needed")
    notifier(_task_context("declare", task=task))
    text = http_receiver.on("/services/T0/B0/SECRET")[0].json()["text"]
    assert "Approval needed: bob, carol open " in text
    assert "/tasks/declare/required_actions and approve or refuse declare" in text
    assert "Requested by alice; the approver must be someone else" in text


def test_deadline_missed_through_the_triggerer_call_path(http_receiver: HttpReceiver, channels: dict[str, Any]) -> None:  # noqa: F811
    # What the triggerer does with AsyncCallback(PlanEventNotifier, kwargs): await cls(**kwargs, context=...).
    context = {
        "dag_run": {
            "dag_id": "dr.notify-test.plan.region-failover",
            "dag_run_id": "manual__2026-11-27T10:00:00+00:00",
            "state": "running",
            "start_date": "2026-11-27T10:00:01Z",
            "conf": {"reason": "us-east-1 is down (INC-7)"},
            "triggering_user_name": "alice",
        },
        "deadline": {"id": "d1", "deadline_time": "2026-11-27T10:30:00Z"},
    }
    kwargs = {"event": "deadline-missed", "plan_json": plan_event_json(_plan(**channels))}

    async def trigger() -> None:
        await PlanEventNotifier(**kwargs, context=context)

    asyncio.run(trigger())
    [hook] = http_receiver.on("/dr-events")
    body = hook.json()
    assert body["event"] == "deadline-missed"
    assert "missed its recovery time objective of 30m" in body["text"]
    assert "started at 2026-11-27T10:00:01Z and was not finished by 2026-11-27T10:30:00Z" in body["text"]
    assert http_receiver.on("/services/T0/B0/SECRET") == []  # ops-slack does not subscribe


def test_deadline_missed_of_a_cleared_run_names_when_it_was_triggered(
    http_receiver: HttpReceiver,  # noqa: F811
    channels: dict[str, Any],
) -> None:
    # A clear at 10:20 moved the run's start_date there; run_after keeps the trigger's time.
    dag_run = {"dag_id": "d", "dag_run_id": "r", "state": "running", "run_after": "2026-11-27T10:00:00Z"}
    context = {
        "dag_run": {**dag_run, "start_date": "2026-11-27T10:20:00Z"},
        "deadline": {"id": "d1", "deadline_time": "2026-11-27T10:30:00Z"},
    }
    kwargs = {"event": "deadline-missed", "plan_json": plan_event_json(_plan(**channels))}

    async def trigger() -> None:
        await PlanEventNotifier(**kwargs, context=context)

    asyncio.run(trigger())
    [hook] = http_receiver.on("/dr-events")
    assert "started at 2026-11-27T10:00:00Z and was not finished by 2026-11-27T10:30:00Z" in hook.json()["text"]


def test_completion_reports_the_recovery_record() -> None:
    record = {
        "outcome": "recovered",
        "recovery": {"measured_s": 412.5, "rto_s": 1800, "rto_met": True},
        "report_key": "k",
    }
    context = _task_context("record")
    context["ti"] = SimpleNamespace(task_id="record", try_number=1, xcom_pull=lambda task_ids: record)
    message = compose(_plan(), "completion", facts_from_context(context, with_record=True))
    assert message.subject == "DR plan region-failover (infrastructure-failure) finished: recovered"
    assert "recovered in 6.9m (RTO 30m met)" in message.text
    assert "The recovery record: k." in message.text


@dataclass
class SmtpInbox:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)


@pytest.fixture
def smtp_server() -> Iterator[SmtpInbox]:
    """A real SMTP server (aiosmtpd) on a free loopback port that keeps what it receives."""
    from aiosmtpd.controller import Controller

    inbox = SmtpInbox(port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = message_from_bytes(envelope.content)
            message["X-Rcpt-To"] = ", ".join(envelope.rcpt_tos)
            inbox.messages.append(message)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def test_smtp_channel_mails_the_recipients(smtp_server: SmtpInbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DRFLOW_TEST_SMTP",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_server.port,
                "extra": {
                    "disable_ssl": True,
                    "disable_tls": True,
                    "from_email": "drflow@example.com",
                    "retry_limit": 0,
                },
            }
        ),
    )
    plan = _plan(
        mail={
            "type": "smtp",
            "conn_id": "drflow_test_smtp",
            "to": ["oncall@example.com", "cto@example.com"],
            "events": ["activation"],
        }
    )
    [notifier] = build_notifiers(plan, "activation")
    notifier(_task_context("assess"))
    [mail] = smtp_server.messages
    assert mail["Subject"] == "[drflow] DR plan region-failover (infrastructure-failure) activated"
    assert mail["From"] == "drflow@example.com"
    assert mail["X-Rcpt-To"] == "oncall@example.com, cto@example.com"
    body = next(part for part in mail.walk() if part.get_content_type() == "text/html").get_payload(decode=True)
    assert b"was activated by alice" in body and b"us-east-1 is down (INC-7)" in body


def test_notify_step_delivers_while_one_channel_is_broken(
    http_receiver: HttpReceiver,  # noqa: F811
    channels: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DRFLOW_TEST_DEAD", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": free_port()})
    )
    every = {**channels, "dead": {"type": "webhook", "conn_id": "drflow_test_dead", "to": [], "events": []}}
    step = {
        "name": "tell-status-page",
        "action": "notify",
        "channels": ["status-slack", "dead"],
        "message": "Failover to us-west-2 started.",
    }

    def params(**overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "spec_name": "notify-test",
            "notifications": [{"name": n, **c} for n, c in every.items()],
        }
        return step_params(step, **spec, notify=list(every), **overrides)

    result = NotifyOperator(task_id="tell-status-page", **params()).execute(_task_context("tell-status-page"))
    assert result["sent"] == ["status-slack"] and "did not answer" in result["failed"]["dead"]
    text = http_receiver.on("/services/T1/B1/OTHER")[0].json()["text"]
    assert text.startswith(
        "*DR plan region-failover (infrastructure-failure): message*\nFailover to us-west-2 started."
    )

    # Nothing delivered: logged, reported on the plan's other channels, kept for the record; the plan goes on.
    ti = TaskXComs("tell-status-page")
    quiet = NotifyOperator(task_id="tell-status-page", **params(channels=["dead"])).execute(_task_context(ti=ti))
    assert quiet["sent"] == [] and "webhook of connection 'drflow_test_dead'" in quiet["failed"]["dead"]
    [kept] = ti.values["drflow_notification_failures"]
    assert (kept["channel"], kept["event"], kept["conn_id"]) == ("dead", "message", "drflow_test_dead")
    reported = [r for r in http_receiver.on("/dr-events") if r.json()["event"] == "notification-failed"]
    assert len(reported) == 2 and "dead (connection drflow_test_dead)" in reported[-1].json()["text"]

    from airflow.sdk.exceptions import AirflowFailException

    # Validation refuses a channel the spec does not define; the operator refuses it too.
    with pytest.raises(AirflowFailException, match="refused: step tell-status-page names notification channels nope"):
        NotifyOperator(task_id="tell-status-page", **params(channels=["nope"])).execute(_task_context())


class TaskXComs:
    """The two XCom calls a notifier makes on the task instance, kept in a dict (the record reads them back)."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.try_number = 1
        self.values: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.values[key] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.values.get(key)


def test_an_unreachable_channel_never_blocks_and_is_reported_on_the_others(
    http_receiver: HttpReceiver,  # noqa: F811
    channels: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from drflow.notifiers import notifiers_for
    from drflow.notifiers.base import NOTIFICATION_FAILURES_KEY

    monkeypatch.setenv(
        "AIRFLOW_CONN_DRFLOW_TEST_REFUSED", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": free_port()})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_DRFLOW_TEST_HTTP_ERROR",
        json.dumps({"conn_type": "http", "host": f"{http_receiver.base_url}/gone"}),
    )
    http_receiver.statuses["/gone"] = 410
    events = ["approval-needed"]
    plan = _plan(
        undefined={"type": "slack", "conn_id": "drflow_test_never_defined", "to": [], "events": events},
        refused={"type": "webhook", "conn_id": "drflow_test_refused", "to": [], "events": events},
        http_error={"type": "slack", "conn_id": "drflow_test_http_error", "to": [], "events": events},
        **channels,
    )
    ti = TaskXComs("declare")
    [notifier] = notifiers_for(plan, "approval-needed")
    notifier(_task_context("declare", ti=ti))  # what HITLOperator.execute does before asking: must not raise

    assert http_receiver.on("/services/T0/B0/SECRET")[0].json()["text"].startswith("*DR plan region-failover")
    failed = ti.values[NOTIFICATION_FAILURES_KEY]
    assert [(f["channel"], f["event"]) for f in failed] == [
        ("undefined", "approval-needed"),
        ("refused", "approval-needed"),
        ("http_error", "approval-needed"),
    ]
    assert "drflow_test_never_defined" in failed[0]["error"] and "did not answer" in failed[1]["error"]
    assert "answered 410" in failed[2]["error"]
    # Every channel that works hears which ones did not, whatever events it subscribes to.
    for path in ("/services/T0/B0/SECRET", "/services/T1/B1/OTHER", "/dr-events"):
        reports = [r for r in http_receiver.on(path) if "could not deliver" in r.body.decode()]
        assert len(reports) == 1, path
    text = http_receiver.on("/services/T1/B1/OTHER")[0].json()["text"]
    assert "drflow could not deliver the approval-needed notification to undefined (connection " in text
    assert "The recovery goes on" in text
    [hook] = [r.json() for r in http_receiver.on("/dr-events") if "could not deliver" in r.body.decode()]
    assert hook["event"] == "notification-failed" and hook["run_id"] == "manual__2026-11-27T10:00:00+00:00"

    # A second event of the same task adds to what the first one kept.
    [again] = notifiers_for(plan, "approval-needed")
    again(_task_context("declare", ti=ti))
    assert len(ti.values[NOTIFICATION_FAILURES_KEY]) == 6


def test_no_deadline_missed_for_a_run_that_already_ended(http_receiver: HttpReceiver, channels: dict[str, Any]) -> None:  # noqa: F811
    kwargs = {"event": "deadline-missed", "plan_json": plan_event_json(_plan(**channels))}
    for state in ("failed", "success"):
        context = {
            "dag_run": {"dag_id": "d", "dag_run_id": "r", "state": state, "end_date": "2026-11-27T10:05:00Z"},
            "deadline": {"id": "d1", "deadline_time": "2026-11-27T10:30:00Z"},
        }

        async def trigger(context: dict[str, Any] = context) -> None:
            await PlanEventNotifier(**kwargs, context=context)

        asyncio.run(trigger())
    assert http_receiver.requests == []
