"""The statuspage channel on a real Airflow (issue 13, item 3): customers are told from the same plan run.

alice triggers the plan (with an internal reason), bob approves the declaration over REST, a notify step
sends the update template, and the run succeeds. A Statuspage-compatible API (a real HTTP server in this
process) receives one incident: opened on activation with the incident template (the public component's
name, the expected resolution), updated by the step, resolved by the DAG's success callback; no text names
the internal component, the reason or the run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.airflow_stack import AirflowStack, airflow_stack
from tests.integration.statuspage_receiver import API_KEY, StatuspageReceiver, serve_statuspage

pytestmark = pytest.mark.slow

DAG_ID = "dr.spe2e.plan.outage"
PAGE = "e2epage01"
REASON = "e2e: orders-db on db-7.internal lost its disk (INC-4711)"
SPEC = """\
version: 1
metadata: {{name: spe2e, owner: test-team, display_name: Shop}}
regions:
  - {{name: us-east-1, role: primary}}
storage:
  - {{name: local-store, type: local, path: {store}, region: us-east-1}}
reports:
  rpo_compliance: {{enabled: false}}
notifications:
  - name: status-page
    type: statuspage
    conn_id: e2e_statuspage
    page_id: e2epage01
    templates:
      incident: >-
        We are investigating a disruption of {{components}}. We expect to resolve it by {{expected_resolution}}.
      update: "We have identified the cause and are restoring {{components}}."
      resolution: "{{components}} work normally again since the disruption at {{started_at}}."
components:
  - {{name: web, display_name: Web Shop, criticality: low, rto: 1h, rpo: 1d}}
  - {{name: orders-db, display_name: Orders DB, internal: true, criticality: low, rto: 30m, rpo: 1d}}
recovery_plans:
  - name: outage
    scenario: human-error
    status: approved
    components: [web, orders-db]
    approval: {{approvers: [alice, bob], four_eyes: true, timeout: 10m}}
    notify: [status-page]
    steps:
      - {{name: tell-customers, action: notify, channels: [status-page], template: update}}
"""


@pytest.fixture(scope="module")
def page() -> Iterator[StatuspageReceiver]:
    with serve_statuspage() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def stack(page: StatuspageReceiver) -> Iterator[AirflowStack]:
    with tempfile.TemporaryDirectory(prefix="drflow-e2e-statuspage-") as tmp:
        specs = Path(tmp) / "specs"
        specs.mkdir()
        (specs / "spe2e.yaml").write_text(SPEC.format(store=Path(tmp) / "store"))
        with airflow_stack(specs, {"AIRFLOW_CONN_E2E_STATUSPAGE": page.conn()}) as running:
            alice = running.client("alice")
            alice.wait_for_dag(DAG_ID)
            alice.unpause(DAG_ID)
            yield running


def _resolved(page: StatuspageReceiver, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        incidents = page.incidents(PAGE)
        if incidents and all(i["status"] == "resolved" for i in incidents):
            return incidents
        time.sleep(0.5)
    return page.incidents(PAGE)


def test_a_plan_run_opens_updates_and_resolves_one_public_incident(
    stack: AirflowStack, page: StatuspageReceiver
) -> None:
    alice, bob = stack.client("alice"), stack.client("bob")
    run_id = alice.trigger(DAG_ID, {"reason": REASON})
    alice.wait_awaiting_input(DAG_ID, run_id, "declare")
    assert bob.answer(DAG_ID, run_id, "declare", "Approve").status_code == 200
    run = alice.wait_run(DAG_ID, run_id)
    assert run["state"] == "success", stack.diagnostics()

    [incident] = _resolved(page)
    assert incident["status"] == "resolved", (page.calls, stack.diagnostics())
    assert incident["metadata"] == {"drflow": {"dag_id": DAG_ID, "run_id": run_id}}
    writes = page.writes()
    assert [(c.method, c.status) for c in writes] == [("POST", 201), ("PATCH", 200), ("PATCH", 200)]
    create, update, resolve = (c.body["incident"] for c in writes)

    started = datetime.fromisoformat(run["start_date"])
    by = (started + timedelta(minutes=30)).strftime("%H:%M UTC")  # the plan's RTO: its strictest component's
    assert create["status"] == "investigating"
    assert create["body"] == f"We are investigating a disruption of Web Shop. We expect to resolve it by {by}."
    assert update == {"status": "identified", "body": "We have identified the cause and are restoring Web Shop."}
    assert resolve["status"] == "resolved"
    assert resolve["body"] == f"Web Shop work normally again since the disruption at {started.strftime('%H:%M UTC')}."
    public = " ".join([create["name"], create["body"], update["body"], resolve["body"]])
    for internal in ("Orders DB", "orders-db", "INC-4711", "db-7", REASON, run_id, DAG_ID):
        assert internal not in public
    assert {c.authorization for c in page.calls} == {f"OAuth {API_KEY}"}

    # The notify step keeps which incident it updated; the recovery record lists what each task did.
    told = alice.xcom(DAG_ID, run_id, "tell-customers")
    assert told["sent"] == ["status-page"]
    assert [(s["incident_id"], s["action"]) for s in told["statuspage"]] == [(incident["id"], "updated")]
    record = alice.xcom(DAG_ID, run_id, "record")
    assert [(s["task_id"], s["template"], s["incident_id"], s["action"]) for s in record["status_page"]] == [
        ("assess-web", "incident", incident["id"], "created"),
        ("tell-customers", "update", incident["id"], "updated"),
    ]
