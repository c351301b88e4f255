"""Clearing a failed step of a recovery plan retries it, on a real Airflow, with the RTO deadline alert on.

Airflow 3.3's clear fails with HTTP 500 for a run with a queued-at deadline not yet missed
(apache/airflow#70368); drflow's plugin replaces the broken function (`dashboard/airflow_fixes.py`). The
plan's `check-routes` step runs the reviewed `check-routes.sh` against a routes directory that is empty, so
it fails; the test puts a route there (the fix), clears the step through the REST API as ops would, the step
passes, and the run waits at a manual step while the RTO passes: the deadline fires at the time it had before
the clear (the RTO runs from the incident, not from the retry), then carol confirms and the run succeeds.
`DRFLOW_AIRFLOW_FIXES=off pytest tests/e2e/test_clear_retry_e2e.py` shows the 500 without the fix.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drflow.devtools.sandbox.webhook import read_received, start_receiver, stop_receiver
from drflow.engines.postgres.cluster import free_port
from tests.e2e.airflow_stack import USERS, AirflowStack, airflow_stack

pytestmark = pytest.mark.slow

DAG_ID = "dr.retry.plan.put-routes-back"
RTO_S = 90
SPEC = """\
version: 1
metadata: {{name: retry, owner: test-team}}
defaults: {{retries: 0}}
regions:
  - {{name: us-east-1, role: primary}}
storage:
  - {{name: local-store, type: local, path: {store}, region: us-east-1}}
reports:
  rpo_compliance: {{enabled: false}}
notifications:
  - {{name: ops-hook, type: webhook, conn_id: retry_hook}}
components:
  - {{name: gateway, criticality: high, rto: {rto}s, rpo: 1d}}
recovery_plans:
  - name: put-routes-back
    scenario: human-error
    status: approved
    components: [gateway]
    notify: [ops-hook]
    approval: {{approvers: [bob], four_eyes: false, timeout: 10m}}
    steps:
      - {{name: check-routes, action: run_command, command: [check-routes.sh, {routes}]}}
      - {{name: confirm, type: manual, assignees: [carol], instructions: Traffic flows again?, timeout: 10m}}
"""


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="drflow-e2e-retry-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def receiver(workspace: Path) -> Iterator[tuple[Path, int]]:
    port = free_port()
    pid = start_receiver(port, workspace / "received.jsonl", workspace / "webhook.log")
    try:
        yield workspace / "received.jsonl", port
    finally:
        stop_receiver(pid)


@pytest.fixture(scope="module")
def stack(workspace: Path, receiver: tuple[Path, int]) -> Iterator[AirflowStack]:
    specs = workspace / "specs"
    specs.mkdir()
    (workspace / "routes").mkdir()  # empty: check-routes.sh fails until a route is put back
    spec = SPEC.format(store=workspace / "store", rto=RTO_S, routes=workspace / "routes")
    (specs / "retry.yaml").write_text(spec)
    hook = {"conn_type": "http", "host": f"http://127.0.0.1:{receiver[1]}/ops-hook"}
    with airflow_stack(
        specs,
        {"AIRFLOW_CONN_RETRY_HOOK": json.dumps(hook)},
        users={**USERS, "carol": "admin"},
    ) as running:
        alice = running.client("alice")
        alice.wait_for_dag(DAG_ID)
        alice.unpause(DAG_ID)
        yield running


def _deadline(stack: AirflowStack, run_id: str) -> tuple[datetime, bool, datetime] | None:
    """(deadline time, missed, the run's queued_at) from Airflow's metadata database; None once pruned."""
    with sqlite3.connect(stack.home / "airflow.db") as db:
        row = db.execute(
            "SELECT d.deadline_time, d.missed, r.queued_at FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id "
            "WHERE r.dag_id = ? AND r.run_id = ?",
            (DAG_ID, run_id),
        ).fetchone()
    if row is None:
        return None

    def utc(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    return utc(row[0]), bool(row[1]), utc(row[2])


def _events(out: Path, run_id: str, event: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in read_received(out)
        if isinstance(entry["body"], dict) and entry["body"].get("run_id") == run_id and entry["body"]["event"] == event
    ]


def test_a_failed_step_cleared_after_the_fix_runs_again_and_the_rto_deadline_keeps_its_time(
    stack: AirflowStack, workspace: Path, receiver: tuple[Path, int]
) -> None:
    alice, bob, carol = stack.client("alice"), stack.client("bob"), stack.client("carol")
    run_id = alice.trigger(DAG_ID, {"reason": "e2e: the gateway's routes were deleted"})
    assert bob.answer(DAG_ID, run_id, "declare", "Approve").status_code == 200
    assert alice.wait_run(DAG_ID, run_id)["state"] == "failed"
    assert alice.task_instances(DAG_ID, run_id)["check-routes"]["state"] == "failed"
    [failed] = _events(receiver[0], run_id, "step-failed")
    assert "fix the cause and clear the task to retry it" in failed["body"]["text"]

    before = _deadline(stack, run_id)
    assert before is not None, "the run has no RTO deadline row: is the deadline alert rendered?"
    deadline_time, missed, queued_at = before
    assert deadline_time == queued_at + timedelta(seconds=RTO_S) and not missed
    assert datetime.now(UTC) < deadline_time - timedelta(seconds=10), "too slow to clear before the RTO"

    (workspace / "routes" / "api.yaml").write_text("path: /api\nupstream: http://127.0.0.1:9/\n")  # the fix
    body = {"dag_run_id": run_id, "task_ids": ["check-routes"], "include_downstream": True, "only_failed": False}
    cleared = alice.request("POST", f"/api/v2/dags/{DAG_ID}/clearTaskInstances", json={**body, "dry_run": False})
    assert cleared.status_code == 200, f"{cleared.status_code} {cleared.text[:500]}\n{stack.log_tail('api-server')}"
    assert "apache/airflow#70368" in stack.log("api-server").read_text()  # the api-server says what it fixed
    assert {ti["task_id"] for ti in cleared.json()["task_instances"]} >= {"check-routes", "confirm", "record"}
    after = _deadline(stack, run_id)
    assert after is not None
    assert after[2] > queued_at  # Airflow re-queued the run ...
    assert after[:2] == (deadline_time, False)  # ... and the RTO deadline did not move with it

    alice.wait_awaiting_input(DAG_ID, run_id, "confirm")
    retried = alice.task_instances(DAG_ID, run_id)["check-routes"]
    assert (retried["state"], retried["try_number"]) == ("success", 2)

    # The run is active past its RTO: the deadline fires at its original time.
    wait_until = time.monotonic() + (deadline_time - datetime.now(UTC)).total_seconds() + 60
    while time.monotonic() < wait_until and not _events(receiver[0], run_id, "deadline-missed"):
        time.sleep(1)
    [missed_message] = _events(receiver[0], run_id, "deadline-missed")
    told_at = datetime.fromisoformat(missed_message["at"])
    assert deadline_time <= told_at < after[2] + timedelta(seconds=RTO_S), (told_at, stack.log_tail("triggerer"))
    text = missed_message["body"]["text"]
    assert f"missed its recovery time objective of {RTO_S}s" in text
    started = re.search(r"the run started at (\S+) and", text)
    assert started and datetime.fromisoformat(started[1].replace("Z", "+00:00")) <= queued_at, text  # not the clear

    assert carol.answer(DAG_ID, run_id, "confirm", "Done").status_code == 200
    assert alice.wait_run(DAG_ID, run_id)["state"] == "success"
    recovery = alice.xcom(DAG_ID, run_id, "record")["recovery"]  # measured from the first start, not the clear
    assert datetime.fromisoformat(recovery["from"].replace("Z", "+00:00")) < queued_at + timedelta(seconds=10)
    assert recovery["rto_met"] is False and recovery["measured_s"] > RTO_S
