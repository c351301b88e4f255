"""Who may answer an escalated question: drflow judges by the time the question has waited, not by the try.

A person who may edit task instances can clear a waiting task (a new try, so the next level by try
number) or add themselves as an assignee (drflow's assignees route); neither makes an escalation level
due. The time since the question was first asked (Airflow's HITL detail, read through the REST API; the
end-to-end test reads the real one) decides.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from drflow.operators import escalation
from drflow.operators.hitl import ApprovalStepOperator, DeclarationOperator, ManualStepOperator
from tests.plan_inputs import SHOP, task_params

ESCALATED = SHOP + "escalation:\n  - {name: incident-commander, people: [dave, alice], after: 1m}\n"
ASKED = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def params(task_id: str) -> dict[str, Any]:
    return task_params(ESCALATED, ".plan.failover", task_id)


def context(try_number: int, user: str = "alice") -> dict[str, Any]:
    return {
        "dag_run": SimpleNamespace(triggering_user_name=user, dag_id="dr.shop.plan.failover", run_id="manual__1"),
        "params": {"reason": "us-east-1 is down"},
        "ti": SimpleNamespace(
            dag_id="dr.shop.plan.failover", run_id="manual__1", task_id="declare", try_number=try_number
        ),
    }


def event(option: str, by: str, waited: timedelta) -> dict[str, Any]:
    return {
        "chosen_options": [option],
        "params_input": {},
        "responded_at": ASKED + waited,
        "responded_by_user": {"id": by, "name": by},
    }


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The question's first asking, as Airflow's REST API would date it; records each read."""
    reads: list[str] = []

    def asked_at(ctx: Any, conn_id: str) -> datetime:
        reads.append(conn_id)
        return ASKED

    monkeypatch.setattr(escalation, "question_asked_at", asked_at)
    return reads


def test_a_level_person_cannot_answer_a_cleared_try_before_the_level_is_due(asked: list[str]) -> None:
    declare = DeclarationOperator(task_id="declare", **params("declare"))
    # Try 2 (a clear, 5 s after asking): by try number dave's level is reached, by the time waited it is not.
    with pytest.raises(AirflowFailException) as raised:
        declare.execute_complete(context(2), event("Approve", "dave", timedelta(seconds=5)))
    message = str(raised.value)
    assert message.startswith("refused: dave answered the disaster declaration of plan 'failover' 5s after")
    assert "only from escalation level 'incident-commander' on, 1m without an answer" in message
    assert message.endswith("to proceed: clear this task and let bob answer (dave may once the level is due)")
    assert asked == ["drflow_airflow_api"]
    # Once the level is due, dave's answer counts.
    result = declare.execute_complete(context(2), event("Approve", "dave", timedelta(seconds=61)))
    assert result["declared"] is True and result["by"] == "dave"
    # The step's own approvers need no escalation, so nothing is read for them.
    assert declare.execute_complete(context(2), event("Approve", "bob", timedelta(seconds=1)))["declared"]
    assert asked == ["drflow_airflow_api"] * 2


def test_the_triggering_user_stays_refused_however_long_the_question_waited(asked: list[str]) -> None:
    # alice triggered the run and is also a person of the level: four eyes refuses her at every level.
    declare = DeclarationOperator(task_id="declare", **params("declare"))
    with pytest.raises(AirflowFailException, match="alice answered the disaster declaration of a run they trig"):
        declare.execute_complete(context(2), event("Approve", "alice", timedelta(hours=1)))
    step = ApprovalStepOperator(task_id="go-live", **params("go-live"))
    with pytest.raises(AirflowFailException, match="alice answered step 'go-live' of a run they triggered"):
        step.execute_complete(context(2), event("Approve", "alice", timedelta(hours=1)))


def test_a_person_of_no_level_reached_by_try_is_refused_before_anything_is_read(asked: list[str]) -> None:
    step = ApprovalStepOperator(task_id="go-live", **params("go-live"))
    # Try 1: dave added himself as an assignee; the question has not escalated.
    with pytest.raises(AirflowFailException, match=r"refused: dave answered step 'go-live' .* only bob may answer"):
        step.execute_complete(context(1), event("Approve", "dave", timedelta(hours=1)))
    assert asked == []


def test_without_the_date_of_the_question_an_escalated_answer_is_refused() -> None:
    declare = DeclarationOperator(task_id="declare", **params("declare"))
    with pytest.raises(AirflowFailException) as raised:
        declare.execute_complete(context(2), event("Approve", "dave", timedelta(minutes=5)))
    message = str(raised.value)
    assert "drflow could not read when the question was first asked" in message
    assert "fix the Airflow API connection the recovery record uses (drflow_airflow_api)" in message


def test_a_manual_step_takes_its_assignees_and_due_levels_only(asked: list[str]) -> None:
    tell = ManualStepOperator(task_id="tell", **params("tell"))
    assert tell.execute_complete(context(1), event("Done", "carol", timedelta(seconds=1)))["by"] == "carol"
    with pytest.raises(AirflowFailException, match=r"refused: mallory answered step 'tell' .* only carol may answer"):
        tell.execute_complete(context(1), event("Done", "mallory", timedelta(hours=1)))
    with pytest.raises(AirflowFailException, match="dave may answer only from escalation level 'incident-comm"):
        tell.execute_complete(context(2), event("Done", "dave", timedelta(seconds=30)))
    assert tell.execute_complete(context(2), event("Done", "dave", timedelta(minutes=2)))["by"] == "dave"
