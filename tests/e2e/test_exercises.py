"""The exercise program on a real Airflow (REST API, scheduler, dag-processor, triggerer), as people drive it.

* Tabletop: the participants answer the briefing, the plan's decision points (the declaration, the manual
  step) and the debrief in Airflow's human-in-the-loop UI; someone who is not a participant cannot; the
  answers, the time each decision took and the gaps named are the result, in every storage target.
* Walkthrough: the DAG checks every step of the plan and stores that all are ready.
* Full-scale: a participant confirms the start, the real plan's DAG runs marked as the exercise, its
  declaration is not asked of the participant who started it (four eyes through the exercise), and the
  result carries the measured recovery time.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from drflow.operators.exercise_chain import plan_run_id
from drflow.store.factory import target_catalogs
from tests.e2e.airflow_stack import AirflowStack, airflow_stack

pytestmark = pytest.mark.slow

TABLETOP, WALKTHROUGH, FULL_SCALE = (f"dr.drill.exercise.docs-{kind}" for kind in ("tabletop", "walkthrough", "full"))
PLAN = "dr.drill.plan.docs-outage"
SPEC = """\
version: 1
metadata: {{name: drill, owner: test-team}}
regions: [{{name: us-east-1, role: primary}}]
storage:
  - {{name: local-a, type: local, path: {root}/a, region: us-east-1}}
  - {{name: local-b, type: local, path: {root}/b, region: us-east-1}}
reports: {{rpo_compliance: {{enabled: false}}}}
components:
  - {{name: docs, criticality: low, rto: 1h, rpo: 1d}}
recovery_plans:
  - name: docs-outage
    scenario: infrastructure-failure
    status: approved
    components: [docs]
    approval: {{approvers: [alice, bob], four_eyes: true, timeout: 10m}}
    steps:
      - {{name: tell-customers, type: manual, assignees: [alice, bob], instructions: Post on the status page.,
         verification: true}}
exercises:
  - name: docs-tabletop
    type: tabletop
    plan: docs-outage
    participants: [{{user: alice, role: incident commander}}, bob]
    schedule: {schedule}
  - {{name: docs-walkthrough, type: walkthrough, plan: docs-outage, schedule: {schedule}}}
  - {{name: docs-full, type: full-scale, plan: docs-outage, participants: [alice, bob], schedule: {schedule}}}
"""


def half_a_year_away() -> str:
    """A yearly slot about six months from today, so no exercise runs by its schedule while the tests do.

    A DAG without a start date runs its last slot at once when that slot was missed by under a tenth of the
    interval (Airflow's cron timetable). With the types' default schedules that depends on the date: on 1
    December the full-scale default (15 November, yearly) started a run as soon as the DAG was unpaused, its
    `start` waited for a participant, and the test's triggered run stayed queued behind it (max_active_runs=1).
    """
    slot = date.today() + timedelta(days=182)
    return f"'0 10 {min(slot.day, 28)} {slot.month} *'"


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[AirflowStack, Path]]:
    root = Path(tempfile.mkdtemp(prefix="drflow-e2e-exercises-"))
    try:
        specs = root / "specs"
        specs.mkdir()
        (specs / "drill.yaml").write_text(SPEC.format(root=root, schedule=half_a_year_away()))
        with airflow_stack(specs) as running:
            alice = running.client("alice")
            for dag_id in (TABLETOP, WALKTHROUGH, FULL_SCALE, PLAN):
                alice.wait_for_dag(dag_id)
                alice.unpause(dag_id)
            yield running, root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def triggered_run(airflow: AirflowStack, dag_id: str) -> str:
    """A run of the exercise DAG, triggered by alice (its schedule has no slot during the tests)."""
    return airflow.client("alice").trigger(dag_id, {}, note="exercise e2e")


def stored(root: Path, run_id: str) -> list[dict[str, Any]]:
    """The exercise results of one run, from each storage target."""
    targets = [{"name": name, "type": "local", "path": str(root / name[-1])} for name in ("local-a", "local-b")]
    return [
        report
        for _, catalog in target_catalogs("drill", targets)
        for report in catalog.read_reports("docs", "exercise")
        if report["run_id"] == run_id
    ]


def test_a_tabletop_records_the_participants_answers_timings_and_gaps(stack: tuple[AirflowStack, Path]) -> None:
    airflow, root = stack
    alice, bob, auditor = (airflow.client(user) for user in ("alice", "bob", "auditor"))
    run_id = triggered_run(airflow, TABLETOP)

    assert alice.answer(TABLETOP, run_id, "brief", "Start").status_code == 200
    assert auditor.answer(TABLETOP, run_id, "decide-declare", "Approve").status_code == 403
    question = bob.hitl(TABLETOP, run_id, "decide-declare")
    assert [u["name"] for u in question["assigned_users"]] == ["alice", "bob"]
    assert "The decision" in question["body"] and "Approve" in question["body"]
    answer = {"answer": "Approve: the status page shows the outage", "gaps": ""}
    assert bob.answer(TABLETOP, run_id, "decide-declare", "Approve", answer).status_code == 200
    gaps = {"answer": "Post it", "gaps": "nobody knows the status page password\n- no template for the post"}
    assert alice.answer(TABLETOP, run_id, "decide-tell-customers", "Done", gaps).status_code == 200
    debrief = {"gaps": "status page access", "follow_ups": "alice stores the password in the vault"}
    assert bob.answer(TABLETOP, run_id, "debrief", "The plan needs changes", debrief).status_code == 200
    assert alice.wait_run(TABLETOP, run_id)["state"] == "success"

    result = alice.xcom(TABLETOP, run_id, "record_result")
    assert result["kind"] == "exercise" and result["type"] == "tabletop" and result["outcome"] == "failed"
    assert result["participants"] == ["alice", "bob"] and result["scenario"] == "primary-region-failure"
    findings = {f["question"]: f for f in result["findings"]}
    assert list(findings) == ["brief", "decide-declare", "decide-tell-customers", "debrief"]
    assert findings["decide-declare"]["ok"] and findings["decide-declare"]["by"] == "bob"
    assert findings["decide-declare"]["decision_s"] >= 0
    assert findings["decide-tell-customers"]["gaps"] == [
        "nobody knows the status page password",
        "no template for the post",
    ]
    assert not findings["decide-tell-customers"]["ok"] and not findings["debrief"]["ok"]
    assert "follow-ups: alice stores the password" in findings["debrief"]["detail"]
    assert result["session_s"] >= 0 and result["measured"] == {"rto_s": None, "rpo_s": None}
    assert [r["outcome"] for r in stored(root, run_id)] == ["failed", "failed"]  # both targets


def test_the_walkthrough_dag_checks_every_step_and_stores_them_ready(stack: tuple[AirflowStack, Path]) -> None:
    airflow, root = stack
    alice = airflow.client("alice")
    run_id = triggered_run(airflow, WALKTHROUGH)
    run = alice.wait_run(WALKTHROUGH, run_id)
    states = {task: ti["state"] for task, ti in alice.task_instances(WALKTHROUGH, run_id).items()}
    assert run["state"] == "success", states
    assert set(states) == {"assess", "declare", "tell-customers", "report"}
    [a, b] = stored(root, run_id)
    assert a == b and a["outcome"] == "passed" and a["would_fail"] == []
    details = {f["step"]: f["detail"] for f in a["findings"]}
    assert "audit connection drflow_airflow_api defined" in details["declare"]


def test_a_full_scale_exercise_runs_the_real_plan_with_four_eyes_through_its_start(
    stack: tuple[AirflowStack, Path],
) -> None:
    airflow, root = stack
    alice, bob = airflow.client("alice"), airflow.client("bob")
    run_id = triggered_run(airflow, FULL_SCALE)  # alice triggers the exercise run, bob starts the plan
    assert bob.answer(FULL_SCALE, run_id, "start", "Approve").status_code == 200

    plan_run = plan_run_id("docs-full", run_id)
    # bob started the exercise, so he counts as the one who triggered the plan: only alice may declare.
    deadline = time.monotonic() + 120
    while alice.request("GET", f"/api/v2/dags/{PLAN}/dagRuns/{quote(plan_run, safe='')}").status_code != 200:
        assert time.monotonic() < deadline, f"the exercise never triggered {plan_run}"
        time.sleep(0.5)
    alice.wait_awaiting_input(PLAN, plan_run, "declare", timeout=180)
    triggered = alice.run(PLAN, plan_run)  # its note before the plan's record replaces it at the end
    assert triggered["run_type"] == "operator_triggered" and triggered["note"].startswith("EXERCISE docs-full")
    mark = triggered["conf"]["exercise"]
    assert (mark["dag_id"], mark["run_id"], mark["started_by"]) == (FULL_SCALE, run_id, "bob")
    assert triggered["conf"]["reason"].startswith("EXERCISE (not a real incident)")
    assert [u["name"] for u in alice.hitl(PLAN, plan_run, "declare")["assigned_users"]] == ["alice"]
    assert "EXERCISE" in alice.hitl(PLAN, plan_run, "declare")["body"]
    assert bob.answer(PLAN, plan_run, "declare", "Approve").status_code == 403
    assert alice.answer(PLAN, plan_run, "declare", "Approve").status_code == 200
    assert alice.answer(PLAN, plan_run, "tell-customers", "Done").status_code == 200
    assert alice.wait_run(PLAN, plan_run)["state"] == "success"
    record = alice.xcom(PLAN, plan_run, "record")
    assert record["exercise"]["name"] == "docs-full" and record["triggered_by"]["user"] == "bob"

    assert alice.wait_run(FULL_SCALE, run_id, timeout=180)["state"] == "success"
    result = alice.xcom(FULL_SCALE, run_id, "record_result")
    assert result["outcome"] == "passed", result["findings"]
    assert result["plan_run_id"] == plan_run and result["started_by"] == "bob"
    assert 0 < result["measured"]["rto_s"] < 3600 and result["objectives"]["rto_s"] == 3600
    # docs has no backup target, so the plan kept its record in XCom and record_result rebuilt it from the API.
    assert result["measured"] == {
        "rto_s": round(record["recovery"]["measured_s"], 3),
        "rpo_s": record["data_loss"]["measured_s"],  # None: a manual step loses no measured data
    }
    assert [r["measured"] for r in stored(root, run_id)] == [result["measured"]] * 2  # both targets
