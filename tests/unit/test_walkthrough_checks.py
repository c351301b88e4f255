"""The walkthrough's check-only twins that need no server: reviewed commands, people, channels, connections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drflow.actions.command_ready import command_ready
from drflow.connections import read_without_airflow
from drflow.contracts import PlanFacts, StepDefinition, WalkthroughCheck
from drflow.exercises.walkthrough import check_step
from drflow.plan.exercise_walkthrough import walkthrough_checks
from drflow.plan.recovery import plan_graph
from tests.plan_inputs import SHOP
from tests.unit.recovery_spec import load


@pytest.fixture
def commands(tmp_path: Path) -> Path:
    root = tmp_path / "commands"
    root.mkdir()
    for name, mode in (("ok.sh", 0o755), ("shared.sh", 0o775), ("plain.sh", 0o644)):
        (root / name).write_text("#!/bin/sh\nexit 0\n")
        (root / name).chmod(mode)
    (tmp_path / "outside.sh").write_text("#!/bin/sh\n")
    (root / "escape.sh").symlink_to(tmp_path / "outside.sh")
    return root


def test_a_command_is_ready_only_when_present_executable_and_writable_by_its_owner_only(commands: Path) -> None:
    assert command_ready(["ok.sh", "--flag"], base=commands)["ok"]
    shared = command_ready(["shared.sh"], base=commands)
    assert (
        not shared["ok"]
        and "writable by its group or by anyone" in shared["detail"]
        and "chmod go-w" in shared["detail"]
    )
    assert "is not executable" in command_ready(["plain.sh"], base=commands)["detail"]
    assert "outside" in command_ready(["escape.sh"], base=commands)["detail"]
    assert "there is no script" in command_ready(["gone.sh"], base=commands)["detail"]
    assert not command_ready([], base=commands)["ok"]


def test_the_shipped_commands_are_the_reviewed_ones() -> None:
    ready = command_ready(["flush-cdn-cache.sh"])
    assert ready["ok"], ready  # tracked in git and unchanged in this checkout


def shop_checks(tmp_path: Path) -> dict[str, tuple[StepDefinition, PlanFacts, WalkthroughCheck]]:
    spec = load(SHOP, tmp_path).spec
    graph = plan_graph(spec, spec.recovery_plan("failover"), "shop.yaml")
    return {
        task.task_id: (StepDefinition.from_params(task.params["step"]), PlanFacts.from_params(task.params["plan"]), c)
        for task, c in walkthrough_checks(graph)
    }


def test_people_and_connections_are_looked_up_never_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read_without_airflow()
    try:
        checks = shop_checks(tmp_path)
        declare = check_step(*checks["declare"])
        assert not declare["ok"] and "approvers named: alice, bob (four eyes)" in declare["detail"]
        assert "AIRFLOW_CONN_DRFLOW_AIRFLOW_API" in declare["detail"]
        monkeypatch.setenv("AIRFLOW_CONN_DRFLOW_AIRFLOW_API", json.dumps({"conn_type": "http", "host": "h"}))
        assert check_step(*checks["declare"])["ok"]
        assert check_step(*checks["tell"]) == {
            "step": "tell",
            "action": "manual",
            "ok": True,
            "detail": "assignees named: carol",
        }
        step, plan, check = checks["go-live"]
        single = StepDefinition.from_params({**step.fields, "approvers": ["alice"]})
        assert "four eyes with a single approver (alice)" in check_step(single, plan, check)["detail"]
        fence = check_step(*checks["fence"])
        assert not fence["ok"] and "AIRFLOW_CONN_PG_PRIMARY" in fence["detail"]
    finally:
        read_without_airflow(False)


def test_a_check_that_breaks_or_does_not_exist_is_a_finding(tmp_path: Path) -> None:
    step, plan, check = shop_checks(tmp_path)["fence"]
    unknown = check_step(step, plan, WalkthroughCheck(task_id="x", action="plan.teleport"))
    assert unknown == {
        "step": "x",
        "action": "teleport",
        "ok": False,
        "detail": "drflow has no check-only version of action 'teleport': check it by hand",
    }
    broken = StepDefinition.from_params({**step.fields, "component": "nowhere"})
    found = check_step(broken, plan, check)
    assert not found["ok"] and found["detail"].startswith("the check itself failed: ValueError: component 'nowhere'")
