"""Escalation levels: the spec checks, the level and wait due by the time waited, the record's escalations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drflow.audit.escalation import Due, QuestionClockError, due_after, escalations, waited_since
from drflow.contracts import EscalationFacts
from drflow.operators.escalation import people_at, timed_out
from drflow.plan.recovery import plan_facts, recovery_plan
from tests.unit.recovery_spec import SPEC, load, messages

LEVELS = (
    EscalationFacts(name="incident-commander", people=("ic",), after_s=60, channels=("ops",)),
    EscalationFacts(name="executive", people=("cto", "ic"), after_s=180),
)
ESCALATION = """
escalation:
  - {name: incident-commander, people: [ic], channels: [ops], after: 1m}
  - {name: executive, people: [cto], channels: [pager], after: 1m}
"""


def test_levels_are_checked_at_their_line(tmp_path: Path) -> None:
    found = messages(SPEC + ESCALATION, tmp_path)
    assert any("escalation level 'executive' notifies channel 'pager', which is not defined" in m for m in found)
    [order] = [m for m in found if "not later than level 'incident-commander'" in m]
    assert ":" in order.split(" ", 1)[0]  # file:line:col first
    assert "each with a longer 'after' than the one before" in order


def test_human_tasks_keep_the_specs_retries_for_real_failures(tmp_path: Path) -> None:
    spec = load(SPEC + ESCALATION.replace("[pager], after: 1m", "[ops], after: 5m"), tmp_path).spec
    facts = plan_facts(spec, spec.recovery_plans[0])
    assert [(level.name, level.after_s) for level in facts.escalation] == [
        ("incident-commander", 60),
        ("executive", 300),
    ]
    dag = recovery_plan(spec, spec.recovery_plans[0], "shop.yaml")
    # Escalation asks again within the same try: no retry is used up, the DAG's (the spec's) apply.
    assert dag.task("declare").retries is None and dag.task("tell").retries is None
    assert dag.retries == spec.defaults.retries == 2


AFTER = [60.0, 180.0]


@pytest.mark.parametrize(
    ("waited", "level", "wait", "escalates", "expired"),
    [
        (0, 0, 60, True, False),
        (59.5, 0, 1, True, False),  # half a second before the level: waits a whole second, never spins
        (60, 1, 120, True, False),  # a level is due from its `after` on
        (179, 1, 1, True, False),
        (180, 2, 420, False, False),  # the last level: then the step's 10m timeout
        (599, 2, 1, False, False),
        (600, 2, 1, False, True),
        (86400, 2, 1, False, True),
    ],
)
def test_the_level_follows_the_time_waited(
    waited: float, level: int, wait: float, escalates: bool, expired: bool
) -> None:
    assert due_after(AFTER, 600, waited) == Due(level, timedelta(seconds=wait), escalates, expired)
    people = people_at(["oncall", "admin"], LEVELS, level)
    assert people == ["oncall", "admin", "ic", "cto"][: 2 + level]


def test_a_level_after_the_step_timeout_is_never_reached() -> None:
    assert due_after(AFTER, 30, 0) == Due(0, timedelta(seconds=30), False, False)
    assert due_after(AFTER, 120, 100) == Due(1, timedelta(seconds=20), False, False)
    assert due_after(AFTER, None, 10_000) == Due(2, None, False, False)
    assert due_after([], None, 10_000) == Due(0, None, False, False)


def test_a_clock_behind_the_one_that_dated_the_question_never_makes_a_level_due() -> None:
    asked = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert waited_since(asked, asked - timedelta(seconds=30)) == 0.0  # "now" 30 s before the question
    assert due_after(AFTER, 600, waited_since(asked, asked - timedelta(seconds=30))).level == 0
    assert waited_since(asked, asked + timedelta(seconds=61)) == 61.0


def test_without_the_date_of_the_question_no_level_is_due() -> None:
    with pytest.raises(QuestionClockError, match="has no date it was first asked"):
        waited_since(None, datetime.now(UTC))


def test_timeouts_are_told_apart_from_answers() -> None:
    assert timed_out({"timedout": True, "chosen_options": ["Reject"]})
    assert timed_out({"error": "…", "error_type": "timeout"})
    assert not timed_out({"timedout": False, "chosen_options": ["Reject"]})


def test_the_record_lists_each_level_reached_by_the_time_waited() -> None:
    plan = {"escalation": [level.to_params() for level in LEVELS]}
    asked = "2026-12-01T08:00:00+00:00"
    steps: list[dict[str, Any]] = [
        {"task_id": "assess", "type": "automated"},
        {"task_id": "declare", "type": "approval", "timeout_s": 600.0},
        {"task_id": "go", "type": "approval", "end": "2026-12-01T08:00:30Z"},
        {"task_id": "tell", "type": "manual", "timeout_s": 120.0},
    ]
    approvals: list[dict[str, Any]] = [
        # Answered 3m20s after it was asked, whatever its tries: both levels were due.
        {"task_id": "declare", "asked_at": asked, "at": "2026-12-01T08:03:20+00:00"},
        {"task_id": "go", "asked_at": asked, "at": None},  # ended after 30 s: no level
        {"task_id": "tell", "asked_at": asked, "at": None},  # still open; its 2m timeout cuts off level 2
    ]
    found = escalations(steps, approvals, plan, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert [(e["task_id"], e["level"], e["people"], e["at"]) for e in found] == [
        ("declare", "incident-commander", ["ic"], "2026-12-01T08:01:00+00:00"),
        ("declare", "executive", ["cto", "ic"], "2026-12-01T08:03:00+00:00"),
        ("tell", "incident-commander", ["ic"], "2026-12-01T08:01:00+00:00"),
    ]
