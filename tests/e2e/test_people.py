"""People and notifications end to end, on a real Airflow (REST API, scheduler, dag-processor, triggerer).

* Four eyes enforced by drflow (issue 7, item 3): the triggering user is one of the approvers; she is not
  asked and her answer is refused, the other approver's is taken, for the declaration and for an
  `approval` step; a run started with `airflow dags trigger` (no authenticated user) is refused before
  anyone is asked, with what to do.
* A notification never blocks a recovery (item 15): a Slack channel whose connection does not exist
  is logged, told to the other channel (the sandbox's webhook receiver) and kept in the recovery
  record; the shipped region-failover plan, with no connection defined at all, still asks for the
  declaration.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drflow.devtools.sandbox.webhook import read_received, start_receiver, stop_receiver
from drflow.engines.postgres.cluster import free_port
from tests.e2e.airflow_stack import USERS, AirflowStack, StackError, airflow_stack

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "plan_specs" / "api-marketplace.yaml"
DAG_ID = "dr.people.plan.four-eyes"
SHIPPED_DAG_ID = "dr.api-marketplace.plan.region-failover"

SPEC = """\
version: 1
metadata: {{name: people, owner: test-team}}
regions:
  - {{name: us-east-1, role: primary}}
storage:
  - {{name: local-store, type: local, path: {store}, region: us-east-1}}
reports:
  rpo_compliance: {{enabled: false}}
notifications:
  # Its connection is never defined: every message to it fails.
  - {{name: team-slack, type: slack, conn_id: people_slack_never_defined}}
  - {{name: e2e-hook, type: webhook, conn_id: people_hook}}
components:
  - {{name: docs, criticality: low, rto: 1h, rpo: 1d}}
recovery_plans:
  - name: four-eyes
    scenario: human-error
    status: approved
    components: [docs]
    approval: {{approvers: [alice, bob], four_eyes: true, timeout: 10m}}
    notify: [team-slack, e2e-hook]
    steps:
      - name: go-no-go
        type: approval
        approvers: [alice, bob]
        instructions: Approve when the docs team agrees.
"""


class Receiver:
    def __init__(self, out: Path) -> None:
        self.out = out

    def bodies(self, run_id: str) -> list[dict[str, Any]]:
        return [
            e["body"]
            for e in read_received(self.out)
            if isinstance(e["body"], dict) and e["body"].get("run_id") == run_id
        ]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    home = Path(tempfile.mkdtemp(prefix="drflow-e2e-receiver-"))
    out = home / "received.jsonl"
    pid = start_receiver(free_port_for_receiver(), out, home / "webhook.log")
    try:
        yield Receiver(out)
    finally:
        stop_receiver(pid)
        shutil.rmtree(home, ignore_errors=True)


_RECEIVER_PORT: list[int] = []


def free_port_for_receiver() -> int:
    if not _RECEIVER_PORT:
        _RECEIVER_PORT.append(free_port())
    return _RECEIVER_PORT[0]


@pytest.fixture(scope="module")
def stack(receiver: Receiver) -> Iterator[AirflowStack]:
    with tempfile.TemporaryDirectory(prefix="drflow-e2e-people-") as tmp:
        specs = Path(tmp) / "specs"
        specs.mkdir()
        (specs / "people.yaml").write_text(SPEC.format(store=Path(tmp) / "store"))
        # The shipped spec as it is, started paused: its protection DAGs would run (and fail: no connections)
        # beside the tests. The plan is unpaused below, as before.
        text = SHIPPED.read_text().replace("\nmetadata:\n", "\ndefaults: {paused: true}\n\nmetadata:\n", 1)
        assert "defaults: {paused: true}" in text
        (specs / SHIPPED.name).write_text(text)
        # Only the webhook receiver: the shipped spec's connections (Slack, PostgreSQL, S3) are all undefined.
        hook = {"conn_type": "http", "host": f"http://127.0.0.1:{free_port_for_receiver()}/e2e-hook"}
        connections = {"AIRFLOW_CONN_PEOPLE_HOOK": json.dumps(hook)}
        users = {**USERS, "oncall": "admin", "admin": "admin"}
        with airflow_stack(specs, connections, users=users) as running:
            alice = running.client("alice")
            for dag_id in (DAG_ID, SHIPPED_DAG_ID):
                alice.wait_for_dag(dag_id)
                alice.unpause(dag_id)
            yield running


def assigned(hitl: dict[str, Any]) -> list[str]:
    return [u["name"] for u in hitl["assigned_users"]]


def task_log(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> str:
    client = stack.client("alice")
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1"
    response = client.request("GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise StackError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return response.text


def test_the_triggering_approver_is_not_asked_and_the_other_approver_decides(
    stack: AirflowStack, receiver: Receiver
) -> None:
    alice, bob = stack.client("alice"), stack.client("bob")
    run_id = alice.trigger(DAG_ID, {"reason": "e2e: the docs site serves stale pages"})

    # Slack cannot be reached, yet the declaration is asked.
    alice.wait_awaiting_input(DAG_ID, run_id, "declare")
    assert assigned(bob.hitl(DAG_ID, run_id, "declare")) == ["bob"]
    assert alice.answer(DAG_ID, run_id, "declare", "Approve").status_code == 403
    assert bob.answer(DAG_ID, run_id, "declare", "Approve").status_code == 200

    bob.wait_awaiting_input(DAG_ID, run_id, "go-no-go")
    assert assigned(bob.hitl(DAG_ID, run_id, "go-no-go")) == ["bob"]
    assert alice.answer(DAG_ID, run_id, "go-no-go", "Approve").status_code == 403
    assert bob.answer(DAG_ID, run_id, "go-no-go", "Approve").status_code == 200
    run = alice.wait_run(DAG_ID, run_id)
    states = {task: ti["state"] for task, ti in alice.task_instances(DAG_ID, run_id).items()}
    assert run["state"] == "success" and set(states.values()) == {"success"}, states

    record = alice.xcom(DAG_ID, run_id, "record")
    assert record["triggered_by"]["user"] == "alice"
    assert {(a["task_id"], a["by"], a["decision"]) for a in record["approvals"]} == {
        ("declare", "bob", "approved"),
        ("go-no-go", "bob", "approved"),
    }
    failed = {(f["task_id"], f["channel"], f["event"]) for f in record["notification_failures"]}
    assert {("assess", "team-slack", "activation"), ("declare", "team-slack", "approval-needed")} <= failed
    assert any("people_slack_never_defined" in p for p in record["problems"])
    events = [body["event"] for body in receiver.bodies(run_id)]
    assert "approval-needed" in events and "notification-failed" in events
    reported = next(body["text"] for body in receiver.bodies(run_id) if body["event"] == "notification-failed")
    assert "team-slack (connection people_slack_never_defined)" in reported and "The recovery goes on" in reported


def test_a_run_started_from_the_cli_cannot_pass_four_eyes(stack: AirflowStack) -> None:
    airflow = str(Path(sys.executable).with_name("airflow"))
    conf = json.dumps({"reason": "e2e: triggered from a shell"})
    done = subprocess.run(
        [airflow, "dags", "trigger", DAG_ID, "--conf", conf, "--output", "json"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    alice = stack.client("alice")
    deadline = time.monotonic() + 60
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not runs:
        page = alice.get(f"/api/v2/dags/{DAG_ID}/dagRuns", limit=100)
        runs = [r for r in page["dag_runs"] if r.get("triggered_by") == "cli"]
        time.sleep(0.5)
    [run] = runs
    run_id = run["dag_run_id"]
    assert alice.wait_task(DAG_ID, run_id, "declare", {"failed"}) == "failed"
    log = task_log(stack, DAG_ID, run_id, "declare")
    assert "through cli, not by a person logged in to Airflow" in log
    assert "trigger the plan from the Airflow UI or REST API as a named user" in log
    assert alice.wait_task(DAG_ID, run_id, "go-no-go", {"upstream_failed"}) == "upstream_failed"
    # Refused before anyone was asked: no approval request exists.
    assert alice.request("GET", alice.hitl_path(DAG_ID, run_id, "declare")).status_code == 404


def test_the_shipped_region_failover_asks_for_the_declaration_without_its_slack_connection(
    stack: AirflowStack,
) -> None:
    alice, oncall = stack.client("alice"), stack.client("oncall")
    run_id = alice.trigger(SHIPPED_DAG_ID, {"reason": "e2e: us-east-1 is down"})
    alice.wait_awaiting_input(SHIPPED_DAG_ID, run_id, "declare", timeout=240)
    declaration = oncall.hitl(SHIPPED_DAG_ID, run_id, "declare")
    assert assigned(declaration) == ["oncall", "admin"]
    assert "e2e: us-east-1 is down" in declaration["body"]
    assert oncall.answer(SHIPPED_DAG_ID, run_id, "declare", "Reject").status_code == 200
    states = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = {task: ti["state"] for task, ti in alice.task_instances(SHIPPED_DAG_ID, run_id).items()}
        if states.get("gate-lag") == "upstream_failed":
            break
        time.sleep(0.5)
    assert states["declare"] == "failed" and states["gate-lag"] == "upstream_failed", states  # refused
