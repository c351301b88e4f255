"""Runbooks are written from the task graph the DAG runs: they cannot list a step the DAG lacks or miss one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drflow.cli import app
from drflow.plan.build import build_plans
from drflow.plan.graph import DagPlan
from drflow.plan.recovery import recovery_plan
from drflow.plan.runbook import render_runbook, runbook_markdown
from drflow.render.airflow import render_dag
from drflow.spec.load import load_spec
from tests.unit.recovery_spec import EXAMPLE, SPEC, load

STEP_LINE = re.compile(r"^\d+\. `([^`]+)` \(", re.MULTILINE)


def _example_plans() -> list[DagPlan]:
    spec = load_spec(EXAMPLE).spec
    return [p for p in build_plans(spec, EXAMPLE) if p.kind == "recovery-plan"]


def _runbook_steps(text: str) -> list[str]:
    return STEP_LINE.findall(text.split("## Steps", 1)[1])


@pytest.mark.parametrize("plan", _example_plans(), ids=lambda p: p.dag_id)
def test_every_task_of_the_rendered_dag_is_a_runbook_step_in_an_order_the_dag_allows(plan: DagPlan) -> None:
    dag = render_dag(plan)
    steps = _runbook_steps(dag.doc_md or "")
    assert sorted(steps) == sorted(dag.task_ids), "the runbook lists exactly the DAG's tasks"
    position = {task_id: index for index, task_id in enumerate(steps)}
    for task in dag.tasks:
        for downstream in task.downstream_task_ids:
            assert position[task.task_id] < position[downstream], f"{task.task_id} → {downstream} out of order"
        head = next(
            line for line in (dag.doc_md or "").splitlines() if line.split(" ", 1)[-1].startswith(f"`{task.task_id}` (")
        )
        upstream = sorted(task.upstream_task_ids)
        if upstream:
            assert all(f"`{u}`" in head.split(";")[1] for u in upstream), head
        if task.execution_timeout is not None and task.task_id not in ("declare",):
            assert f"timeout {_duration(task.execution_timeout.total_seconds())}" in head, head
    assert dag.doc_md == runbook_markdown(plan)


def _duration(seconds: float) -> str:
    from datetime import timedelta

    from drflow.spec.types import format_duration

    return format_duration(timedelta(seconds=seconds))


def test_a_change_to_the_spec_changes_the_dag_and_the_runbook_alike(tmp_path: Path) -> None:
    before = load(SPEC, tmp_path).spec
    changed_text = SPEC.replace(
        "      - {name: fence, action: fence, component: orders}\n",
        "      - {name: fence, action: fence, component: orders, timeout: 7m}\n"
        "      - {name: hold, type: approval, approvers: [dave]}\n",
    ).replace(
        "{name: promote, action: promote, component: orders, node: replica-1}",
        "{name: promote, action: promote, component: orders, node: replica-1, depends_on: [hold]}",
    )
    after = load(changed_text, tmp_path).spec
    old = render_dag(recovery_plan(before, before.recovery_plans[0], "shop.yaml"))
    new = render_dag(recovery_plan(after, after.recovery_plans[0], "shop.yaml"))

    assert "hold" not in old.task_ids and "hold" in new.task_ids
    assert "`hold`" not in (old.doc_md or "") and "`hold` (approval; after `fence`" in (new.doc_md or "")
    assert new.get_task("promote").upstream_task_ids == {"hold"}
    assert "`promote` (automated: `promote`; after `hold`;" in (new.doc_md or "")
    assert "**dave** (Airflow user): decides `hold`" in (new.doc_md or "")
    timeout = new.get_task("fence").execution_timeout
    assert timeout is not None and timeout.total_seconds() == 420 and "timeout 7m" in (new.doc_md or "")
    assert _runbook_steps(new.doc_md or "") == [
        "assess",
        "declare",
        "gate",
        "fence",
        "hold",
        "promote",
        "check",
        "tell",
        "record",
    ]


def test_the_runbook_names_decisions_contacts_prerequisites_checks_and_the_way_back(tmp_path: Path) -> None:
    spec = load(SPEC, tmp_path).spec
    text = recovery_plan(spec, spec.recovery_plans[0], "shop.yaml").doc_md
    assert "| ops | webhook | `ops_hook` | — | activation, step-failed |" in text
    assert "- step 2, `declare`: bob, carol answer **Approve** or **Reject** within 30m" in text
    assert "- step 7, `tell`: alice do the work and answer **Done** or **Failed**" in text
    assert "**Needs**: `replica-1` of `orders` reachable, in recovery, replaying, at most the RPO (10m)" in text
    assert "**Checks**: writable = true" in text
    assert "a promotion cannot be undone" in text


def test_a_draft_plan_keeps_its_runbook_under_the_banner(tmp_path: Path) -> None:
    spec = load(SPEC.replace("status: approved", "status: draft"), tmp_path).spec
    plan = recovery_plan(spec, spec.recovery_plans[0], "shop.yaml")
    assert plan.doc_md.startswith("> **DRAFT — not triggerable.**")
    assert "- **Status**: draft" in plan.doc_md and _runbook_steps(plan.doc_md)[2:5] == ["gate", "fence", "promote"]


def test_html_escapes_what_the_spec_writes(tmp_path: Path) -> None:
    spec = load(
        SPEC.replace("instructions: Tell the customers.", "instructions: Tell <script>x()</script> them."), tmp_path
    )
    html = render_runbook(recovery_plan(spec.spec, spec.spec.recovery_plans[0], "shop.yaml"), "html")
    assert html.startswith("<!doctype html>") and "<h2>Steps</h2>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_the_command_prints_the_dag_docs_and_refuses_an_unknown_plan() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["runbook", "--spec", str(EXAMPLE), "--plan", "region-failover"])
    assert result.exit_code == 0, result.output
    [plan] = [p for p in _example_plans() if p.dag_id.endswith(".region-failover")]
    assert result.output.strip() == plan.doc_md.strip()
    wrong = runner.invoke(app, ["runbook", "--spec", str(EXAMPLE), "--plan", "nope"])
    assert wrong.exit_code == 1
    assert "has no recovery plan 'nope'" in wrong.output and "region-failover" in wrong.output
