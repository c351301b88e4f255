"""The people steps of recovery plans, without a scheduler: four eyes, bodies, and what each answer does.

The end-to-end test drives them through the real API; these pin the decisions that need no Airflow run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from drflow.operators.hitl import (
    ApprovalStepOperator,
    DeclarationOperator,
    ManualStepOperator,
)
from drflow.operators.hitl_text import format_assessment
from tests.plan_inputs import SHOP, task_params


def params(task_id: str, **step: Any) -> dict[str, Any]:
    return task_params(SHOP, ".plan.failover", task_id, **step)


class XComs:
    def __init__(self, values: dict[str, Any], task_id: str = "declare") -> None:
        self.values = values
        self.task_id = task_id
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.values.get(task_ids) if key == "return_value" else self.pushed.get(key)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def context(
    user: str | None, dag_id: str = "dr.shop.plan.failover", run_id: str = "manual__1", **params: Any
) -> dict[str, Any]:
    return {
        "dag_run": SimpleNamespace(triggering_user_name=user, dag_id=dag_id, run_id=run_id),
        "params": {"reason": "us-east-1 is down", **params},
        "ti": XComs({"assess": {"summary": "**replica-1** lags 2s (RPO 5m)", "lag_s": 2}}),
    }


def event(option: str, by: str | None, **params_input: Any) -> dict[str, Any]:
    return {
        "chosen_options": [option],
        "params_input": params_input,
        "responded_at": datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
        "responded_by_user": {"id": by, "name": by} if by else None,
    }


def declaration(**step: Any) -> DeclarationOperator:
    return DeclarationOperator(task_id="declare", **params("declare", **step))


def test_four_eyes_removes_the_triggering_user_from_the_approvers() -> None:
    op = declaration()
    assert op.eligible_approvers(context("alice")) == ["bob"]
    assert op.eligible_approvers(context("carol")) == ["alice", "bob"]
    assert declaration(four_eyes=False).eligible_approvers(context("alice")) == ["alice", "bob"]
    assert op.response_timeout is not None and op.response_timeout.total_seconds() == 900
    # No default option: Airflow's form highlights the default, and Approve is what the approvers come to do.
    assert op.defaults is None
    assert op.params.get_param("comment").schema["type"] == ["null", "string"]  # optional: Approve needs no comment


def test_nobody_left_to_approve_fails_and_says_what_to_do() -> None:
    op = declaration(approvers=["alice"])
    with pytest.raises(AirflowFailException, match="the only approver, alice, triggered the run") as raised:
        op.execute(context("alice"))
    assert "to proceed: have another person trigger the plan, or add a second approver" in str(raised.value)


def test_the_body_shows_the_run_the_assessment_and_every_step() -> None:
    body = declaration().build_body(context("alice", notes="pager 123", override_safety=True), ["bob"])
    assert "**triggered by** alice" in body and "**Reason**: us-east-1 is down" in body
    assert "**Notes**: pager 123" in body and "Safety override requested" in body
    assert "**replica-1** lags 2s (RPO 5m)" in body and "lag_s" not in body  # the summary stands for the rest
    assert "1. `fence` (automated: fence) — Stop writes on the primary." in body
    assert "3. `tell` (manual)" in body and "Who may answer: bob." in body


def test_an_assessment_without_a_summary_lists_its_fields() -> None:
    lines = format_assessment("assess", {"reachable": True, "replicas": ["replica-1"], "lag": {"replica-1": 2}})
    assert lines == [
        "#### assess",
        "- **reachable**: True",
        "- **replicas**: replica-1",
        '- **lag**: `{"replica-1": 2}`',
    ]
    assert format_assessment("assess", None)[1].startswith("_no assessment result")


def test_approving_ones_own_run_is_refused_even_if_the_api_let_it_through() -> None:
    with pytest.raises(AirflowFailException, match=r"alice answered the disaster declaration of a run they tr"):
        declaration().execute_complete(context("alice"), event("Approve", "alice"))


def test_an_answer_from_someone_who_is_not_an_approver_fails_naming_both_users() -> None:
    with pytest.raises(AirflowFailException) as raised:
        declaration().execute_complete(context("alice"), event("Approve", "carol"))
    message = str(raised.value)
    assert message.startswith("refused: carol answered the disaster declaration of plan 'failover', but only bob")
    assert "(and the people of its escalation levels, once due) may answer it; to proceed:" in message
    with pytest.raises(AirflowFailException, match="refused: an unknown user answered"):
        declaration().execute_complete(context("alice"), event("Approve", None))


def test_a_run_whose_triggering_user_is_unknown_cannot_be_declared_with_four_eyes() -> None:
    op = declaration()
    with pytest.raises(AirflowFailException) as raised:
        op.execute(context(None))
    assert "not by a person logged in to Airflow" in str(raised.value)
    assert "to proceed: trigger the plan from the Airflow UI or REST API as a named user" in str(raised.value)
    # `airflow dags trigger` names the OS user: Airflow never vouched for it.
    op.triggered_via = lambda context: "cli"  # type: ignore[method-assign]
    with pytest.raises(AirflowFailException, match=r"run was started as 'root' through cli, not by a person"):
        op.execute(context("root"))
    # Without the API, four eyes cannot be proven: refuse and say which connection to fix.
    with pytest.raises(AirflowFailException, match=r"could not read how this run was started .*drflow_airflow_api"):
        declaration().execute(context("alice", dag_id="d", run_id="r"))
    # Without four eyes nothing needs proving.
    no_four_eyes = declaration(four_eyes=False)
    no_four_eyes.require_known_trigger(context(None))


def test_an_approval_step_with_four_eyes_refuses_the_triggering_user() -> None:
    op = ApprovalStepOperator(task_id="go-live", **params("go-live"))
    assert op.eligible_approvers(context("alice")) == ["bob"]
    with pytest.raises(AirflowFailException, match=r"alice answered step 'go-live' of a run they triggered"):
        op.execute_complete(context("alice"), event("Approve", "alice"))
    assert op.execute_complete(context("alice"), event("Approve", "bob"))["approved"] is True
    alone = ApprovalStepOperator(task_id="go-live", **params("go-live", approvers=["alice"]))
    with pytest.raises(AirflowFailException, match="nobody may answer step 'go-live': its only approver, alice"):
        alone.execute(context("alice"))
    without = ApprovalStepOperator(task_id="go-live", **params("go-live", four_eyes=False))
    assert without.eligible_approvers(context("alice")) == ["alice", "bob"]
    assert without.execute_complete(context("alice"), event("Approve", "alice"))["approved"] is True


class Ti(XComs):
    def __init__(self) -> None:
        super().__init__({})


def test_a_refusal_fails_the_declaration_saying_who_refused_and_why() -> None:
    refused = {**context("alice"), "ti": Ti()}
    with pytest.raises(AirflowFailException) as raised:
        declaration().execute_complete(refused, event("Reject", "bob", comment="false alarm"))
    message = str(raised.value)
    assert message.startswith("REFUSED by bob: the disaster declaration of plan 'failover' was refused")
    assert "(“false alarm”)" in message and "Nothing was changed: no step of the plan ran" in message
    # The record (a teardown) still reads who refused from the task's result.
    assert refused["ti"].pushed["return_value"]["declared"] is False
    assert refused["ti"].pushed["return_value"]["comment"] == "false alarm"


def test_no_answer_in_time_refuses_the_run() -> None:
    timeout = {"error": "The Human-in-the-loop response timeout has passed", "error_type": "timeout"}
    waited = {**context("alice"), "ti": Ti()}
    with pytest.raises(AirflowFailException, match=r"REFUSED: nobody answered the disaster declaration .* within 15m"):
        declaration().execute_complete(waited, timeout)
    assert waited["ti"].pushed["return_value"]["timed_out"] is True
    step = ApprovalStepOperator(task_id="go-live", **params("go-live", timeout="10m"))
    with pytest.raises(AirflowFailException, match=r"no-go at step 'go-live': nobody answered within 10m"):
        step.execute_complete(context("alice"), timeout)


def test_the_triggering_user_reads_that_they_are_not_an_approver() -> None:
    body = declaration().build_body(context("alice"), ["bob"])
    assert body.startswith("> **alice: you triggered this run, so you are not an approver of it** (four eyes)")
    assert "Airflow refuses an answer from alice (*Access Denied*); bob must answer." in body
    assert "**RTO** 15m · **RPO** 5m" in body  # durations as a spec writes them
    assert "you triggered this run" not in declaration(four_eyes=False).build_body(context("alice"), ["alice", "bob"])


def test_an_approval_returns_who_declared() -> None:
    result = declaration().execute_complete(context("alice"), event("Approve", "bob"))
    assert result["declared"] is True and result["by"] == "bob" and result["triggered_by"] == "alice"
    assert result["at"] == "2026-11-27T12:00:00+00:00" and result["timed_out"] is False


def manual() -> ManualStepOperator:
    return ManualStepOperator(task_id="tell", **params("tell"))


def test_a_manual_step_reported_failed_names_the_person_and_the_comment() -> None:
    op = manual()
    assert op.options == ["Done", "Failed"] and [u["id"] for u in op.assigned_users or []] == ["carol"]
    assert op.params.get_param("comment").schema["type"] == ["null", "string"]  # Done needs no comment
    assert op.execute_complete(context("alice"), event("Done", "carol", comment=None))["comment"] == ""
    with pytest.raises(AirflowFailException, match="reported failed by carol: status page is down; to proceed"):
        op.execute_complete(context("alice"), event("Failed", "carol", comment="status page is down"))
    done = op.execute_complete(context("alice"), event("Done", "carol", comment="posted"))
    assert (done["chosen"], done["by"], done["comment"]) == (["Done"], "carol", "posted")


def test_failed_without_a_comment_is_asked_again() -> None:
    # Airflow's form cannot make the comment depend on the button: drflow asks again (the end-to-end browser
    # test shows Airflow parking the task anew); here, only that drflow does not take the answer.
    op = manual()
    asked: list[Any] = []

    def ask_again(ctx: Any) -> str:
        asked.append(ctx)
        return "asked again"

    op.execute = ask_again  # type: ignore[method-assign,assignment]
    assert op.execute_complete(context("alice"), event("Failed", "carol", comment="  ")) == "asked again"
    assert len(asked) == 1
    assert "**Failed** needs a comment saying what failed" in op.build_body(context("alice"))


def test_a_no_go_stops_the_plan() -> None:
    op = ApprovalStepOperator(task_id="go-live", **params("go-live", approvers=["bob"]))
    with pytest.raises(AirflowFailException, match="no-go at step 'go-live' by bob: the plan stops here"):
        op.execute_complete(context("alice"), event("Reject", "bob"))
    assert op.execute_complete(context("alice"), event("Approve", "bob"))["approved"] is True
