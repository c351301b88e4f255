"""Escalation on a real Airflow (issue 13, item 1): an unanswered declaration reaches the next level.

The declaration waits for bob (alice triggered the run, four eyes); nobody answers within the level's
8 s, so the task asks again (the same try: escalation uses no retry) with carol (the incident commander)
added as an assignee, the level's channel (a local webhook receiver) is told, carol answers, and the
recovery record lists the escalation. A try made by a clear before a level is due asks at the level due by
time: nobody is added, nobody is told, and an early answer is refused and the question asked again.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from drflow.devtools.sandbox.webhook import read_received, start_receiver, stop_receiver
from drflow.engines.postgres.cluster import free_port
from tests.e2e.airflow_stack import USERS, AirflowStack, airflow_stack

pytestmark = pytest.mark.slow

DAG_ID = "dr.escalate.plan.declare-late"
SPEC = """\
version: 1
metadata: {{name: escalate, owner: test-team}}
regions:
  - {{name: us-east-1, role: primary}}
storage:
  - {{name: local-store, type: local, path: {store}, region: us-east-1}}
reports:
  rpo_compliance: {{enabled: false}}
notifications:
  - {{name: ic-hook, type: webhook, conn_id: escalate_hook}}
escalation:
  - {{name: incident-commander, people: [carol], channels: [ic-hook], after: 8s}}
components:
  - {{name: docs, criticality: low, rto: 1h, rpo: 1d}}
recovery_plans:
  - name: declare-late
    scenario: human-error
    status: approved
    components: [docs]
    approval: {{approvers: [alice, bob], four_eyes: true, timeout: 10m}}
    steps:
      - {{name: tell-ic, action: notify, channels: [ic-hook], message: declared}}
"""
GUARDED_DAG_ID = "dr.guarded.plan.declare-guarded"
# carol's level is due only after 5 minutes: an answer of hers before that is refused, whatever her try says.
GUARDED_SPEC = (
    SPEC.replace("name: escalate,", "name: guarded,")
    .replace("after: 8s", "after: 5m")
    .replace("name: declare-late", "name: declare-guarded")
)
STATUS_DAG_ID = "dr.cadence.plan.watched"
STATUS_SPEC = """\
version: 1
metadata: {{name: cadence, owner: test-team}}
regions:
  - {{name: us-east-1, role: primary}}
storage:
  - {{name: local-store, type: local, path: {store}, region: us-east-1}}
reports:
  rpo_compliance: {{enabled: false}}
notifications:
  - {{name: status-hook, type: webhook, conn_id: escalate_hook}}
components:
  - {{name: docs, criticality: low, rto: 1h, rpo: 1d}}
recovery_plans:
  - name: watched
    scenario: human-error
    status: approved
    components: [docs]
    notify: [status-hook]
    status_every: 3s
    approval: {{approvers: [bob], four_eyes: false, timeout: 10m}}
    steps:
      - {{name: check-by-hand, type: manual, assignees: [carol], instructions: look, timeout: 10m}}
"""


@pytest.fixture(scope="module")
def receiver_out() -> Iterator[tuple[Path, int]]:
    home = Path(tempfile.mkdtemp(prefix="drflow-e2e-escalate-"))
    port = free_port()
    pid = start_receiver(port, home / "received.jsonl", home / "webhook.log")
    try:
        yield home / "received.jsonl", port
    finally:
        stop_receiver(pid)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(receiver_out: tuple[Path, int]) -> Iterator[AirflowStack]:
    with tempfile.TemporaryDirectory(prefix="drflow-e2e-escalate-") as tmp:
        specs = Path(tmp) / "specs"
        specs.mkdir()
        (specs / "escalate.yaml").write_text(SPEC.format(store=Path(tmp) / "store"))
        (specs / "cadence.yaml").write_text(STATUS_SPEC.format(store=Path(tmp) / "store-cadence"))
        (specs / "guarded.yaml").write_text(GUARDED_SPEC.format(store=Path(tmp) / "store-guarded"))
        hook = {"conn_type": "http", "host": f"http://127.0.0.1:{receiver_out[1]}/ic-hook"}
        with airflow_stack(
            specs,
            {"AIRFLOW_CONN_ESCALATE_HOOK": json.dumps(hook)},
            users={**USERS, "carol": "admin"},
            # The scheduler's sweep of timed-out questions (15 s by default) decides how late a level is reached.
            # The RTO deadline alert stays on: drflow's plugin lets Airflow 3.3 clear a task of such a run (the
            # attack test clears one; apache/airflow#70368, dashboard/airflow_fixes.py).
            extra_env={"AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2"},
        ) as running:
            alice = running.client("alice")
            for dag_id in (DAG_ID, STATUS_DAG_ID, GUARDED_DAG_ID):
                alice.wait_for_dag(dag_id)
                alice.unpause(dag_id)
            yield running


def test_an_unanswered_declaration_escalates_and_the_new_assignee_answers(
    stack: AirflowStack, receiver_out: tuple[Path, int]
) -> None:
    alice, carol = stack.client("alice"), stack.client("carol")
    run_id = alice.trigger(DAG_ID, {"reason": "e2e: nobody on call answers"})
    alice.wait_awaiting_input(DAG_ID, run_id, "declare")
    first = alice.hitl(DAG_ID, run_id, "declare")
    asked = datetime.fromisoformat(first["created_at"])  # the question, as Airflow dates it
    parked = times_parked(stack, DAG_ID, run_id, "declare")
    assert [u["name"] for u in first["assigned_users"]] == ["bob"]
    assert carol.answer(DAG_ID, run_id, "declare", "Approve").status_code == 403  # not yet her turn
    assignees_path = f"/drflow-hitl/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/declare/assignees"
    auditor = stack.client("auditor")  # a viewer may not add anyone, herself least of all
    assert auditor.request("PATCH", assignees_path, json={"add": ["auditor"]}).status_code == 403

    deadline = time.monotonic() + 90
    assignees: list[str] = []
    while time.monotonic() < deadline:
        assignees = [u["name"] for u in alice.hitl(DAG_ID, run_id, "declare")["assigned_users"]]
        if assignees != ["bob"]:
            break
        time.sleep(0.5)
    escalated_after = (datetime.now(UTC) - asked).total_seconds()
    assert assignees == ["bob", "carol"], stack.diagnostics()
    assert escalated_after >= 8
    wait_parked_again(stack, DAG_ID, run_id, "declare", parked)
    assert alice.task_instances(DAG_ID, run_id)["declare"]["try_number"] == 1  # no retry used up
    assert carol.answer(DAG_ID, run_id, "declare", "Approve").status_code == 200

    run = alice.wait_run(DAG_ID, run_id)
    assert run["state"] == "success"
    assert alice.request("PATCH", assignees_path, json={"add": ["alice"]}).status_code == 409  # answered: closed
    record = alice.xcom(DAG_ID, run_id, "record")
    assert [(e["task_id"], e["level"], e["people"]) for e in record["escalations"]] == [
        ("declare", "incident-commander", ["carol"])
    ]
    assert {(a["task_id"], a["by"], a["decision"]) for a in record["approvals"]} == {("declare", "carol", "approved")}
    told = [e["body"] for e in read_received(receiver_out[0]) if isinstance(e["body"], dict)]
    [escalation] = [b for b in told if b.get("event") == "escalation" and b.get("run_id") == run_id]
    assert "Escalated to incident-commander" in escalation["text"] and "carol" in escalation["text"]


def test_status_updates_arrive_at_the_cadence_while_the_run_is_active_and_stop_with_it(
    stack: AirflowStack, receiver_out: tuple[Path, int]
) -> None:
    alice, bob, carol = stack.client("alice"), stack.client("bob"), stack.client("carol")
    run_id = alice.trigger(STATUS_DAG_ID, {"reason": "e2e: status cadence"})
    assert bob.answer(STATUS_DAG_ID, run_id, "declare", "Approve").status_code == 200
    alice.wait_awaiting_input(STATUS_DAG_ID, run_id, "check-by-hand")

    def updates() -> list[dict[str, Any]]:
        return [
            entry
            for entry in read_received(receiver_out[0])
            if isinstance(entry["body"], dict)
            and entry["body"].get("event") == "status"
            and entry["body"].get("run_id") == run_id
        ]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum("waiting on carol" in u["body"]["text"] for u in updates()) < 2:
        time.sleep(0.5)
    waiting = [u for u in updates() if "waiting on carol" in u["body"]["text"]]
    assert len(waiting) >= 2, stack.diagnostics()
    first, second = (datetime.fromisoformat(u["at"]) for u in waiting[:2])
    assert (second - first).total_seconds() >= 3  # no more often than status_every (3s; at least 10s apart)
    text = waiting[-1]["body"]["text"]
    assert "elapsed of its RTO 1h" in text and "Done: assess, declare (2 of 3 steps)." in text
    assert "Expected completion: unknown (no earlier successful run of check-by-hand)" in text

    assert carol.answer(STATUS_DAG_ID, run_id, "check-by-hand", "Done").status_code == 200
    assert alice.wait_run(STATUS_DAG_ID, run_id)["state"] == "success"
    assert alice.task_instances(STATUS_DAG_ID, run_id)["status_updates"]["state"] == "success"
    sent = len(updates())
    time.sleep(4)
    assert len(updates()) == sent  # the run has ended: no more updates


def times_parked(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> int:
    """How often the scheduler has taken in the task parked in awaiting_input (notes/airflow-e2e.md, pitfall 1)."""
    marker = f"dag_id={dag_id}, task_id={task_id}, run_id={run_id},"
    lines = stack.log("scheduler").read_text(errors="replace").splitlines()
    return sum("TaskInstance Finished" in line and marker in line and "state=awaiting_input" in line for line in lines)


def wait_parked_again(stack: AirflowStack, dag_id: str, run_id: str, task_id: str, before: int) -> None:
    """Until the question is asked again and the scheduler has taken in the parked task: only then may one answer."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if times_parked(stack, dag_id, run_id, task_id) > before:
            return
        time.sleep(0.3)
    raise AssertionError(f"{task_id} was never asked again\n{stack.diagnostics()}")


def escalations_told(receiver: Path, run_id: str) -> list[str]:
    told = [e["body"] for e in read_received(receiver) if isinstance(e["body"], dict)]
    return [b["text"] for b in told if b.get("event") == "escalation" and b.get("run_id") == run_id]


def clear_and_wait_new_try(stack: AirflowStack, clearer: Any, dag_id: str, run_id: str) -> None:
    """Clear the waiting declaration (as ops would after a worker crash) until its new try waits again."""
    parked = times_parked(stack, dag_id, run_id, "declare")
    cleared = clearer.request(
        "POST",
        f"/api/v2/dags/{dag_id}/clearTaskInstances",
        json={"dry_run": False, "task_ids": ["declare"], "dag_run_id": run_id, "only_failed": False},
    )
    assert cleared.status_code == 200, cleared.text
    wait_parked_again(stack, dag_id, run_id, "declare", parked)
    assert clearer.task_instances(dag_id, run_id)["declare"]["try_number"] == 2


def test_a_question_cleared_before_the_next_level_is_due_adds_nobody_and_tells_nobody(
    stack: AirflowStack, receiver_out: tuple[Path, int]
) -> None:
    """Ops clear the waiting declaration (as after a worker crash): the new try asks at the level due by time."""
    alice, bob, carol = stack.client("alice"), stack.client("bob"), stack.client("carol")
    run_id = alice.trigger(GUARDED_DAG_ID, {"reason": "e2e: a clear mid-wait"})
    alice.wait_awaiting_input(GUARDED_DAG_ID, run_id, "declare")
    clear_and_wait_new_try(stack, carol, GUARDED_DAG_ID, run_id)
    assert [u["name"] for u in alice.hitl(GUARDED_DAG_ID, run_id, "declare")["assigned_users"]] == ["bob"]
    assert carol.answer(GUARDED_DAG_ID, run_id, "declare", "Approve").status_code == 403  # still not her turn
    assert bob.answer(GUARDED_DAG_ID, run_id, "declare", "Approve").status_code == 200
    assert alice.wait_run(GUARDED_DAG_ID, run_id)["state"] == "success"
    assert escalations_told(receiver_out[0], run_id) == []
    assert alice.xcom(GUARDED_DAG_ID, run_id, "record")["escalations"] == []


def test_a_level_person_who_clears_the_question_and_adds_herself_is_refused_and_the_question_asked_again(
    stack: AirflowStack, receiver_out: tuple[Path, int]
) -> None:
    """carol may edit task instances: she adds herself, then clears the task so that it has a new try."""
    alice, bob, carol = stack.client("alice"), stack.client("bob"), stack.client("carol")
    run_id = alice.trigger(GUARDED_DAG_ID, {"reason": "e2e: an early escalation"})
    alice.wait_awaiting_input(GUARDED_DAG_ID, run_id, "declare")
    path = f"/drflow-hitl/dags/{GUARDED_DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/declare/assignees"
    bad: list[list[str]] = [[], [""], [" carol"], ["x"] * 501, ["a\nb"], ["y" * 257]]
    for names in bad:  # nobody, blank names, a huge list, control characters, a huge name
        assert carol.request("PATCH", path, json={"add": names}).status_code == 422, names
    elsewhere = path.replace(GUARDED_DAG_ID, "not-a-drflow-dag")
    refused = carol.request("PATCH", elsewhere, json={"add": ["carol"]})
    assert refused.status_code == 404 and "is not a drflow DAG" in refused.text

    assert carol.request("PATCH", path, json={"add": ["carol"]}).status_code == 200
    clear_and_wait_new_try(stack, carol, GUARDED_DAG_ID, run_id)
    assert [u["name"] for u in alice.hitl(GUARDED_DAG_ID, run_id, "declare")["assigned_users"]] == ["bob", "carol"]
    parked = times_parked(stack, GUARDED_DAG_ID, run_id, "declare")
    assert carol.answer(GUARDED_DAG_ID, run_id, "declare", "Approve").status_code == 200  # Airflow takes it

    # drflow does not: it logs the refusal and asks again (same try, same people); bob may still answer.
    wait_parked_again(stack, GUARDED_DAG_ID, run_id, "declare", parked)
    assert not alice.hitl(GUARDED_DAG_ID, run_id, "declare")["response_received"]  # carol's answer was cleared
    assert bob.answer(GUARDED_DAG_ID, run_id, "declare", "Approve").status_code == 200
    run = alice.wait_run(GUARDED_DAG_ID, run_id)
    assert run["state"] == "success"
    log = alice.get(f"/api/v2/dags/{GUARDED_DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/declare/logs/2")
    text = json.dumps(log)
    assert "carol may answer only from escalation level 'incident-commander' on, 5m without an answer" in text
    record = alice.xcom(GUARDED_DAG_ID, run_id, "record")
    assert [(r["task_id"], r["by"]) for r in record["refused_answers"]] == [("declare", "carol")]
    assert {(a["task_id"], a["by"], a["decision"]) for a in record["approvals"]} == {("declare", "bob", "approved")}
    assert escalations_told(receiver_out[0], run_id) == []


def test_a_declaration_marked_success_by_hand_runs_no_step(stack: AirflowStack) -> None:
    """alice triggered the run and may edit task instances: she marks the declaration success herself."""
    alice = stack.client("alice")
    run_id = alice.trigger(GUARDED_DAG_ID, {"reason": "e2e: four eyes by hand"})
    alice.wait_awaiting_input(GUARDED_DAG_ID, run_id, "declare")
    ti_path = f"/api/v2/dags/{GUARDED_DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    marked = alice.request("PATCH", f"{ti_path}/declare", json={"new_state": "success"})
    assert marked.status_code == 200, marked.text  # Airflow lets her

    run = alice.wait_run(GUARDED_DAG_ID, run_id)
    states = {task: ti["state"] for task, ti in alice.task_instances(GUARDED_DAG_ID, run_id).items()}
    assert run["state"] == "failed" and states["tell-ic"] == "failed", states  # drflow does not
    assert states["record"] == "success"
    text = json.dumps(alice.get(f"{ti_path}/tell-ic/logs/1"))
    assert "refused: step 'tell-ic' runs only after the disaster declaration was approved, but it was not" in text
    assert "(nobody answered it; the task is success: was it marked success by hand?)" in text
