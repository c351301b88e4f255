"""Which questions a plan step checks before it acts (the end-to-end test marks a declaration success by hand)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from drflow.operators.gates import questions_before, require_approved, stored_answer
from drflow.operators.step_base import PlanStepOperator
from drflow.render.airflow import render_dag
from tests.plan_inputs import SHOP, recovery_dag


def test_each_step_checks_the_declaration_and_the_approvals_before_it() -> None:
    dag = render_dag(recovery_dag(SHOP, "failover"))
    before = {task_id: sorted(q.task_id for q in questions_before(dag.get_task(task_id))) for task_id in dag.task_ids}
    assert before["assess"] == [] and before["declare"] == []
    assert before["fence"] == ["declare"]
    assert before["rebuild"] == ["declare", "go-live"]
    fence, record = dag.get_task("fence"), dag.get_task("record")
    assert isinstance(fence, PlanStepOperator) and isinstance(record, PlanStepOperator)
    assert fence.gated and not record.gated


def test_a_step_after_a_declaration_cannot_run_without_reading_its_answer() -> None:
    dag = render_dag(recovery_dag(SHOP, "failover"))
    context = {"dag_run": SimpleNamespace(dag_id=dag.dag_id, run_id="manual__1", triggering_user_name="alice")}
    # No Airflow API to read the answer from (no connection): refused, saying which connection to fix.
    with pytest.raises(AirflowFailException) as raised:
        require_approved(dag.get_task("fence"), context, "drflow_airflow_api", "fence")
    message = str(raised.value)
    assert message.startswith("refused: step 'fence' runs only after the disaster declaration was approved")
    assert "to proceed: fix the Airflow API connection the recovery record uses (drflow_airflow_api)" in message
    require_approved(dag.get_task("assess"), context, "drflow_airflow_api", "assess")  # nothing before it


def test_a_stored_answer_reads_as_an_answer() -> None:
    detail = {
        "chosen_options": ["Approve"],
        "responded_by_user": {"id": "bob", "name": "bob"},
        "responded_at": "2026-12-01T07:13:46.580983Z",
        "params_input": {"comment": " fine "},
        "response_received": True,
    }
    assert stored_answer(detail) == {
        "chosen": ["Approve"],
        "by": "bob",
        "at": "2026-12-01T07:13:46.580983Z",
        "timed_out": False,
        "comment": "fine",
    }
