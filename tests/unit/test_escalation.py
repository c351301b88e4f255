"""Escalation levels: the spec checks, who is asked at each try and for how long, the record's escalations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from drflow.audit.escalation import escalations
from drflow.contracts import EscalationFacts
from drflow.operators.escalation import level_of, people_at, timed_out, wait_at
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


def test_human_tasks_get_one_try_per_level(tmp_path: Path) -> None:
    spec = load(SPEC + ESCALATION.replace("[pager], after: 1m", "[ops], after: 5m"), tmp_path).spec
    facts = plan_facts(spec, spec.recovery_plans[0])
    assert [(level.name, level.after_s) for level in facts.escalation] == [
        ("incident-commander", 60),
        ("executive", 300),
    ]
    dag = recovery_plan(spec, spec.recovery_plans[0], "shop.yaml")
    assert dag.task("declare").retries == 2 and dag.task("declare").retry_delay_s == 1
    assert dag.task("tell").retries == 2  # a manual step escalates too


@pytest.mark.parametrize(
    ("try_number", "people", "wait", "escalates"),
    [
        (1, ["oncall", "admin"], 60, True),
        (2, ["oncall", "admin", "ic"], 120, True),
        (3, ["oncall", "admin", "ic", "cto"], 420, False),  # the step's 10m bound the whole wait
        (9, ["oncall", "admin", "ic", "cto"], 420, False),
    ],
)
def test_each_try_asks_more_people(try_number: int, people: list[str], wait: int, escalates: bool) -> None:
    level = level_of({"ti": SimpleNamespace(try_number=try_number)}, LEVELS)
    assert people_at(["oncall", "admin"], LEVELS, level) == people
    assert wait_at(LEVELS, level, timedelta(minutes=10)) == (timedelta(seconds=wait), escalates)


def test_a_level_after_the_step_timeout_is_never_reached() -> None:
    assert wait_at(LEVELS, 0, timedelta(seconds=30)) == (timedelta(seconds=30), False)
    assert wait_at(LEVELS, 2, None) == (None, False)


def test_timeouts_are_told_apart_from_answers() -> None:
    assert timed_out({"timedout": True, "chosen_options": ["Reject"]})
    assert timed_out({"error": "…", "error_type": "timeout"})
    assert not timed_out({"timedout": False, "chosen_options": ["Reject"]})


def test_the_record_lists_each_level_reached() -> None:
    plan = {"escalation": [level.to_params() for level in LEVELS]}
    steps = [
        {"task_id": "assess", "type": "automated", "try_history": [{"try_number": 1}]},
        {
            "task_id": "declare",
            "type": "approval",
            "try_history": [{"try_number": n, "start": f"t{n}"} for n in (1, 2, 3)],
        },
    ]
    found = escalations(steps, plan)
    assert [(e["task_id"], e["level"], e["people"], e["at"]) for e in found] == [
        ("declare", "incident-commander", ["ic"], "t2"),
        ("declare", "executive", ["cto", "ic"], "t3"),
    ]
