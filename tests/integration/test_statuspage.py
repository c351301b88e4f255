"""The statuspage channel against a Statuspage-compatible API served over real HTTP, through Airflow connections.

One incident per run: activation opens it (a retried activation does not open a second), status updates and
a notify step update it, a successful completion resolves it, a notify step publishes the post-incident
summary. Texts are the channel's templates with public facts only; a rendered text naming an internal
component is refused, not sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from drflow.notifiers import channel_notifier, notifiers_for
from drflow.operators.notify import NotifyOperator
from tests.integration.statuspage_receiver import API_KEY, StatuspageReceiver, statuspage  # noqa: F401
from tests.plan_inputs import recovery_dag

PAGE = "shoppage1"
DAG_ID = "dr.shop.plan.outage"
SPEC = """\
version: 1
metadata: {{name: shop, owner: team, display_name: {service}}}
regions:
  - {{name: us-east-1, role: primary}}
notifications:
  - name: status-page
    type: statuspage
    conn_id: sp_api
    page_id: shoppage1
    templates:
      incident: >-
        We are investigating a disruption of {{components}}. We expect to resolve it by {{expected_resolution}}.
      update: "We found the cause and are restoring {{components}} ({{elapsed}} so far)."
      resolution: "{{components}} work normally again; the disruption began at {{started_at}}."
      postmortem: "Summary: {{service}} recovered within {{elapsed}}."
components:
  - {{name: web, display_name: Web Shop, criticality: low, rto: 1h, rpo: 1d}}
  - {{name: {internal}, display_name: Orders DB, internal: true, criticality: low, rto: 30m, rpo: 1d}}
recovery_plans:
  - name: outage
    scenario: human-error
    status: approved
    components: [web, {internal}]
    approval: {{approvers: [alice, bob]}}
    notify: [status-page]
    steps:
      - {{name: tell-update, action: notify, channels: [status-page], template: update}}
      - {{name: tell-summary, action: notify, channels: [status-page], template: postmortem}}
"""
STARTED = datetime(2026, 11, 30, 9, 40, tzinfo=UTC)
REASON = "orders-db primary on db-7.internal lost its disk (INC-4711)"


class TaskXComs:
    """The XCom calls a notifier makes on the task instance, kept in a dict."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.values: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.values[key] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.values.get(key)


def _dag(service: str = "Shop", internal: str = "orders-db") -> Any:
    return recovery_dag(SPEC.format(service=service, internal=internal), "outage")


def _context(run_id: str, task_id: str = "assess-web", ti: Any = None, state: str = "running") -> dict[str, Any]:
    return {
        "dag_run": SimpleNamespace(
            dag_id=DAG_ID,
            run_id=run_id,
            state=state,
            conf={"reason": REASON},
            triggering_user_name="alice",
            start_date=STARTED,
        ),
        "ti": ti or SimpleNamespace(task_id=task_id, try_number=1),
        "params": {"reason": REASON},
    }


@pytest.fixture
def connection(statuspage: StatuspageReceiver, monkeypatch: pytest.MonkeyPatch) -> StatuspageReceiver:  # noqa: F811
    monkeypatch.setenv("AIRFLOW_CONN_SP_API", statuspage.conn())
    return statuspage


def _public_only(text: str, run_id: str) -> None:
    for leak in ("Orders DB", "orders-db", "INC-4711", "db-7", run_id, DAG_ID):
        assert leak not in text


def test_one_incident_per_run_opened_updated_resolved_and_summarised(connection: StatuspageReceiver) -> None:
    dag, run_id = _dag(), "manual__2026-11-30T09:40:00+00:00"
    plan = dag.notify

    # Activation (the first task's execute callback): the incident opens, rendered with public facts only.
    [activation] = notifiers_for(plan, "activation")
    activation.notify(_context(run_id))
    [incident] = connection.incidents(PAGE)
    [create] = connection.writes()
    assert (create.method, create.path, create.status) == ("POST", f"/v1/pages/{PAGE}/incidents", 201)
    assert create.authorization == f"OAuth {API_KEY}"
    body = create.body["incident"]
    assert body["status"] == "investigating" and body["metadata"] == {"drflow": {"dag_id": DAG_ID, "run_id": run_id}}
    assert body["body"] == "We are investigating a disruption of Web Shop. We expect to resolve it by 10:10 UTC."
    assert body["name"] == "Disruption of Web Shop"
    _public_only(body["name"] + body["body"], run_id)  # the run is in the metadata, which the page never shows

    # A retried first task sends activation again: the run's incident is found, no second one opens.
    activation.notify(_context(run_id))
    assert len(connection.incidents(PAGE)) == 1 and len(connection.writes()) == 1

    # The status cadence's update: its internal text stays out, the update template goes in.
    internal = f"Status of plan 'outage': Done: assess-orders-db. Reason {REASON}"
    channel = plan["notifications"]["status-page"]
    channel_notifier("status-page", channel, "status", plan, message=internal).notify(_context(run_id, "status"))
    patch = connection.writes()[-1]
    assert (patch.method, patch.path) == ("PATCH", f"/v1/pages/{PAGE}/incidents/{incident['id']}")
    assert patch.body["incident"]["status"] == "identified"
    assert patch.body["incident"]["body"].startswith("We found the cause and are restoring Web Shop (")
    _public_only(str(patch.body), run_id)  # an update carries no metadata

    # A notify step with template: update, its inputs built by the plan builder; the XCom keeps the incident id.
    # Its text is the one the cadence just posted (same elapsed minute): customers are not told it twice.
    step = dag.task("tell-update")
    ti = TaskXComs("tell-update")
    writes = len(connection.writes())
    result = NotifyOperator(task_id="tell-update", **step.params).execute(_context(run_id, ti=ti))
    assert result["sent"] == ["status-page"] and result["failed"] == {}
    [done] = result["statuspage"]
    assert (done["incident_id"], done["action"], done["template"]) == (incident["id"], "not sent: unchanged", "update")
    assert len(connection.writes()) == writes
    assert ti.values["drflow_statuspage"][0]["incident_id"] == incident["id"]

    # The run succeeds (the DAG's success callback): the same incident is resolved.
    [completion] = notifiers_for(plan, "completion", outcome="success")
    completion.notify(_context(run_id, "record", state="success"))
    resolve = connection.writes()[-1]
    assert resolve.path.endswith(incident["id"]) and resolve.body["incident"]["status"] == "resolved"
    assert resolve.body["incident"]["body"] == "Web Shop work normally again; the disruption began at 09:40 UTC."
    assert connection.api.incidents[incident["id"]]["status"] == "resolved"

    # The post-incident summary, on the resolved incident.
    summary = dag.task("tell-summary")
    result = NotifyOperator(task_id="tell-summary", **summary.params).execute(_context(run_id, "tell-summary"))
    assert result["statuspage"][0]["action"] == "postmortem published"
    draft, publish = connection.writes()[-2:]
    assert draft.path.endswith(f"{incident['id']}/postmortem") and draft.body["postmortem"]["body_draft"].startswith(
        "Summary: Shop recovered within "
    )
    assert publish.path.endswith("/postmortem/publish") and publish.status == 200
    assert connection.api.incidents[incident["id"]]["postmortem_published_at"]
    assert len(connection.incidents(PAGE)) == 1
    assert all(call.authorization == f"OAuth {API_KEY}" for call in connection.calls)


def test_a_failed_run_leaves_its_incident_open_with_an_update(connection: StatuspageReceiver) -> None:
    dag, run_id = _dag(), "manual__2026-11-30T11:00:00+00:00"
    notifiers_for(dag.notify, "activation")[0].notify(_context(run_id))
    notifiers_for(dag.notify, "completion", outcome="failed")[0].notify(_context(run_id, "record", state="failed"))
    [incident] = connection.incidents(PAGE)
    assert incident["status"] == "identified"
    assert [u["status"] for u in incident["incident_updates"]] == ["identified", "investigating"]


def test_a_text_that_would_name_an_internal_component_is_refused_not_sent(connection: StatuspageReceiver) -> None:
    # Every template passes validation, but the service is called what the internal component is called:
    # {service} would render that name, so the notifier refuses to send and the failure path takes over.
    dag, run_id = _dag(service="Orders DB"), "manual__2026-11-30T12:00:00+00:00"
    ti = TaskXComs("tell-summary")
    step = dag.task("tell-summary")
    result = NotifyOperator(task_id="tell-summary", **step.params).execute(_context(run_id, ti=ti))
    assert result["sent"] == [] and "names internal component 'Orders DB'" in result["failed"]["status-page"]
    assert connection.calls == []
    [kept] = ti.values["drflow_notification_failures"]
    assert (kept["channel"], kept["event"]) == ("status-page", "message")


def test_a_wrong_key_says_what_to_fix(connection: StatuspageReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SP_API", connection.conn(key="revoked-key"))
    plan = _dag().notify
    notifier = channel_notifier("status-page", plan["notifications"]["status-page"], "activation", plan)
    with pytest.raises(Exception, match="answered 401 .*API key in the connection's password is wrong or revoked"):
        notifier.notify(_context("manual__x"))
    assert connection.incidents(PAGE) == []
