"""Who may answer an escalated question, and when it is asked again: by the time it has waited, never the try.

A person who may edit task instances can clear a waiting task (a new try) or add themselves as an assignee
(drflow's assignees route); neither makes an escalation level due. The time since the question was first
asked (Airflow's HITL detail and the api-server's clock, read through the REST API; the end-to-end test
reads the real ones) decides. A refused answer is logged and kept, and the question asked again, until
the step's timeout has passed.
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


class Ti(SimpleNamespace):
    """The task instance as the operators use it: its ids and its XComs."""

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get(key)


def context(try_number: int, user: str = "alice", task_id: str = "declare") -> dict[str, Any]:
    return {
        "dag_run": SimpleNamespace(triggering_user_name=user, dag_id="dr.shop.plan.failover", run_id="manual__1"),
        "params": {"reason": "us-east-1 is down"},
        "ti": Ti(dag_id="dr.shop.plan.failover", run_id="manual__1", task_id=task_id, try_number=try_number, xcoms={}),
    }


def event(option: str, by: str, waited: timedelta) -> dict[str, Any]:
    return {
        "chosen_options": [option],
        "params_input": {},
        "responded_at": ASKED + waited,
        "responded_by_user": {"id": by, "name": by},
    }


class Clock:
    """Airflow's dates as the REST API gives them: the question's first asking and the api-server's now."""

    def __init__(self) -> None:
        self.now = ASKED
        self.reads = 0

    def __call__(self, ctx: Any, conn_id: str) -> tuple[datetime, datetime]:
        assert conn_id == "drflow_airflow_api"
        self.reads += 1
        return ASKED, self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock()
    monkeypatch.setattr(escalation, "question_clock", found)
    return found


def asks_again(op: Any) -> list[dict[str, Any]]:
    """Record each time the operator asks again (its execute), instead of parking in Airflow."""
    asked: list[dict[str, Any]] = []

    def execute(ctx: dict[str, Any]) -> str:
        asked.append(ctx)
        return "asked again"

    op.execute = execute
    return asked


def test_a_level_person_answering_a_cleared_try_before_the_level_is_due_is_refused_and_asked_again(
    clock: Clock,
) -> None:
    declare = DeclarationOperator(task_id="declare", **params("declare"))
    asked = asks_again(declare)
    # Try 2 (a clear, 5 s after asking): dave's level is not due, so his answer is refused, and the question
    # (still open: its 15m timeout has not passed) is asked again of the same people.
    ctx = context(2)
    clock.now = ASKED + timedelta(seconds=6)
    assert declare.execute_complete(ctx, event("Approve", "dave", timedelta(seconds=5)), level=0) == "asked again"
    assert len(asked) == 1
    [refused] = ctx["ti"].xcoms["drflow_refused_answers"]
    assert refused["by"] == "dave" and refused["task_id"] == "declare"
    assert refused["why"].startswith("dave answered the disaster declaration of plan 'failover' 5s after it was")
    assert "only from escalation level 'incident-commander' on, 1m without an answer" in refused["why"]
    # Once the level is due, dave's answer counts; the result keeps the refusal for the record.
    result = declare.execute_complete(ctx, event("Approve", "dave", timedelta(seconds=61)), level=1)
    assert result["declared"] is True and result["by"] == "dave"
    assert [r["by"] for r in result["refused_answers"]] == ["dave"]
    assert [e["level"] for e in result["escalations"]] == ["incident-commander"]
    # The step's own approvers need no escalation, so nothing is read for them.
    reads = clock.reads
    assert declare.execute_complete(context(2), event("Approve", "bob", timedelta(seconds=1)))["declared"]
    assert clock.reads == reads


def test_a_refused_answer_fails_the_step_once_its_timeout_has_passed(clock: Clock) -> None:
    declare = DeclarationOperator(task_id="declare", **params("declare"))
    asked = asks_again(declare)
    clock.now = ASKED + timedelta(minutes=15)
    ctx = context(1)
    with pytest.raises(AirflowFailException) as raised:
        declare.execute_complete(ctx, event("Approve", "mallory", timedelta(minutes=14)))
    assert str(raised.value).startswith("refused: mallory answered the disaster declaration of plan 'failover', but")
    assert "to proceed: let one of them answer" in str(raised.value)
    assert asked == []
    assert [r["by"] for r in ctx["ti"].xcoms["drflow_refused_answers"]] == ["mallory"]  # kept for the record


def test_the_triggering_user_stays_refused_however_long_the_question_waited(clock: Clock) -> None:
    # alice triggered the run and is also a person of the level: four eyes refuses her at every level.
    declare = DeclarationOperator(task_id="declare", **params("declare"))
    asked = asks_again(declare)
    clock.now = ASKED + timedelta(hours=1)  # past the 15m timeout: the refusal fails the step
    with pytest.raises(AirflowFailException, match="alice answered the disaster declaration of a run they trig"):
        declare.execute_complete(context(2), event("Approve", "alice", timedelta(hours=1)))
    step = ApprovalStepOperator(task_id="go-live", **params("go-live"))
    asks = asks_again(step)
    ctx = context(2, task_id="go-live")  # go-live has no timeout: asked again, the refusal logged and kept
    assert step.execute_complete(ctx, event("Approve", "alice", timedelta(hours=1))) == "asked again"
    assert (
        "alice answered step 'go-live' of a run they triggered" in ctx["ti"].xcoms["drflow_refused_answers"][0]["why"]
    )
    assert (len(asked), len(asks)) == (0, 1)


def test_an_unanswered_wait_asks_again_at_the_level_due_and_not_before(clock: Clock) -> None:
    declare = DeclarationOperator(task_id="declare", **params("declare"))
    asked = asks_again(declare)
    timeout = {"error": "The Human-in-the-loop response timeout has passed", "error_type": "timeout"}
    clock.now = ASKED + timedelta(seconds=59)  # the sweep came a second early: asked again, still at level 0
    assert declare.execute_complete(context(1), dict(timeout), level=0) == "asked again"
    assert declare.level == 0 and declare.told == 0
    clock.now = ASKED + timedelta(seconds=61)
    assert declare.execute_complete(context(1), dict(timeout), level=0) == "asked again"
    assert declare.level == 1
    clock.now = ASKED + timedelta(minutes=15)  # the step's timeout: no more asking, the declaration is refused
    with pytest.raises(AirflowFailException, match="REFUSED: nobody answered the disaster declaration"):
        declare.execute_complete(context(1), dict(timeout), level=1)
    assert len(asked) == 2


def test_without_the_date_of_the_question_an_escalated_answer_is_refused() -> None:
    declare = DeclarationOperator(task_id="declare", **params("declare"))
    with pytest.raises(AirflowFailException) as raised:
        declare.execute_complete(context(2), event("Approve", "dave", timedelta(minutes=5)))
    message = str(raised.value)
    assert "drflow could not read when the question was first asked" in message
    assert "fix the Airflow API connection the recovery record uses (drflow_airflow_api)" in message


def test_a_manual_step_takes_its_assignees_and_due_levels_only(clock: Clock) -> None:
    tell = ManualStepOperator(task_id="tell", **params("tell"))
    asked = asks_again(tell)
    clock.now = ASKED + timedelta(minutes=2)
    assert tell.execute_complete(context(1), event("Done", "carol", timedelta(seconds=1)))["by"] == "carol"
    ctx = context(1, task_id="tell")
    assert tell.execute_complete(ctx, event("Done", "mallory", timedelta(minutes=1))) == "asked again"
    assert (
        "mallory answered step 'tell' of plan 'failover', but only carol"
        in ctx["ti"].xcoms["drflow_refused_answers"][0]["why"]
    )
    assert tell.execute_complete(ctx, event("Done", "dave", timedelta(seconds=30))) == "asked again"
    assert tell.execute_complete(ctx, event("Done", "dave", timedelta(minutes=2)))["by"] == "dave"
    assert len(asked) == 2


class Told(ManualStepOperator):
    """A manual step whose assignee additions and channel messages are kept instead of sent over HTTP."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.added: list[list[str]] = []
        self.sent: list[str] = []

    def assign(self, context: Any, people: Any) -> None:
        self.added.append(list(people))

    def tell(self, context: Any, level: Any, text: str) -> None:
        self.sent.append(text)


def test_a_new_try_asks_at_the_level_due_by_time_and_never_announces_an_escalation(clock: Clock) -> None:
    tell = Told(task_id="tell", **params("tell"))
    # A retry or a clear 30 s after the first asking: level 0, nobody added, nobody told, 30 s more to wait.
    clock.now = ASKED + timedelta(seconds=30)
    assert tell.escalate_to(context(3, task_id="tell"), ["carol"]) == ["carol"]
    assert (tell.level, tell.response_timeout, tell.added, tell.sent) == (0, timedelta(seconds=30), [], [])
    # A new try after the level was due: its people are added (again: adding is idempotent), and the channel
    # hears that the question was asked again, not that it escalated; it waits until the 1h timeout.
    clock.now = ASKED + timedelta(minutes=5)
    assert tell.escalate_to(context(2, task_id="tell"), ["carol"]) == ["carol", "dave", "alice"]
    assert tell.level == 1 and tell.response_timeout == timedelta(minutes=55)
    assert tell.added == [["carol", "dave", "alice"]]
    [sent] = tell.sent
    assert sent.startswith("Asked again at escalation level incident-commander: step 'tell' of plan 'failover'")
    # Within a try, the wait for the level ending: that is the escalation, announced once.
    tell.sent, tell.told = [], 0
    clock.now = ASKED + timedelta(seconds=75)
    tell.escalate_to(context(1, task_id="tell"), ["carol"])
    [sent] = tell.sent
    assert sent.startswith("Escalated to incident-commander: step 'tell' of plan 'failover' has had no answer for 1m")
    tell.sent, tell.told = [], 1  # asked again at the same level (a refused answer): nothing to announce
    tell.escalate_to(context(1, task_id="tell"), ["carol"])
    assert tell.sent == []
