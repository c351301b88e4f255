"""Every rendered task of every example spec builds its operator's contract from the params its builder wrote.

A key an operator needs that no plan builder provides fails here, not in a recovery run: the operator is
built the way the renderer builds it (plan facts, step definitions and backup runs are rebuilt in its
constructor), and each step is read back as the spec's typed model that its operator reads at run time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drflow.contracts import (
    BackupRun,
    ConfigDrillRun,
    ConfigRun,
    ContractError,
    CopyRun,
    DrillReportRun,
    FilesBackupRun,
    FilesDrillRun,
    RestoreDrillRun,
    RetentionRun,
    RpoReportRun,
    SimulationRun,
    SnapshotDrillRun,
    SnapshotRun,
    StepDefinition,
)
from drflow.contracts.metrics import MetricsRun
from drflow.operators.files import FilesBackupOperator
from drflow.operators.policy import BackupPolicyOperator
from drflow.operators.step_base import PlanStepOperator
from drflow.plan.compile import compile_specs
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.render.actions import ACTIONS, operator_class
from drflow.render.airflow import render_dag
from drflow.spec.plans import SwitchDnsAction

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
# The example specs, plus a spec with the actions and methods they do not use, plus a broken spec.
SPECS = [*sorted((ROOT / "plan_specs").rglob("*.yaml")), DATA / "every_action.yaml", DATA / "five_mistakes.yaml"]


def _plans() -> list[DagPlan]:
    return compile_specs(SPECS)


def _tasks() -> list[tuple[DagPlan, TaskPlan]]:
    return [(plan, task) for plan in _plans() for task in plan.tasks]


def test_the_walk_covers_every_action_drflow_has() -> None:
    assert {task.action for _, task in _tasks()} == set(ACTIONS)
    assert all(plan.error is None for plan in _plans() if "five_mistakes" not in plan.source)


@pytest.mark.parametrize(("plan", "task"), _tasks(), ids=lambda v: getattr(v, "dag_id", getattr(v, "task_id", "")))
def test_every_task_builds_its_contract(plan: DagPlan, task: TaskPlan) -> None:
    cls = operator_class(task.action)
    # What render_dag does: a missing keyword argument, or one the operator does not take, is a TypeError;
    # the constructors of plan steps and backup policies rebuild their contracts (a missing key: ContractError).
    operator = cls(task_id=task.task_id, **task.params)
    if isinstance(operator, PlanStepOperator):
        assert operator.facts.to_params() == task.params["plan"]  # the facts its execute() reads
        definition = StepDefinition.from_params(task.params["step"])
        if operator.step_model is not None:
            typed = definition.spec_step(operator.step_model)  # what its execute() reads
            assert typed.name == task.task_id
    if isinstance(operator, BackupPolicyOperator) or "run" in task.params:
        contract = FilesBackupRun if isinstance(operator, FilesBackupOperator) else BackupRun
        assert contract.from_params(task.params["run"]).to_params() == task.params["run"]
    if "retention" in task.params:
        assert RetentionRun.from_params(task.params["retention"]).to_params() == task.params["retention"]
    if "snapshot" in task.params:
        assert SnapshotRun.from_params(task.params["snapshot"]).to_params() == task.params["snapshot"]
    if "simulation" in task.params:  # simulations of recovery plans (issue 11)
        assert SimulationRun.from_params(task.params["simulation"]).to_params() == task.params["simulation"]
        assert getattr(operator, "simulation", None) == SimulationRun.from_params(task.params["simulation"])
    if "metrics" in task.params:  # the DR metrics of a spec (issue 11)
        assert MetricsRun.from_params(task.params["metrics"]).to_params() == task.params["metrics"]
        assert getattr(operator, "metrics", None) == MetricsRun.from_params(task.params["metrics"])
    if "copy" in task.params:  # a policy's copy_to targets
        assert CopyRun.from_params(task.params["copy"]).to_params() == task.params["copy"]
        assert getattr(operator, "copy", None) == CopyRun.from_params(task.params["copy"])
    if "report" in task.params:  # the RPO-compliance report
        assert RpoReportRun.from_params(task.params["report"]).to_params() == task.params["report"]
        assert getattr(operator, "report", None) == RpoReportRun.from_params(task.params["report"])
    if "drill" in task.params:  # every kind of drill's restore and report
        drill = getattr(operator, "drill", None)
        assert isinstance(drill, (RestoreDrillRun, FilesDrillRun, DrillReportRun, SnapshotDrillRun, ConfigDrillRun))
        assert drill.to_params() == task.params["drill"] and type(drill).from_params(task.params["drill"]) == drill
    if "config" in task.params:  # configuration backups (issue 9)
        assert ConfigRun.from_params(task.params["config"]).to_params() == task.params["config"]
        assert getattr(operator, "config_run", None) == ConfigRun.from_params(task.params["config"])


def test_every_dag_renders() -> None:
    for plan in _plans():
        assert render_dag(plan).dag_id == plan.dag_id


def test_a_key_no_builder_writes_fails_the_walk() -> None:
    """The walk can fail: the drifted `plan_steps`-style key, and a step that lost a field, are caught."""
    [(_, assess)] = [(p, t) for p, t in _tasks() if t.action == "plan.assess" and "api-marketplace" in p.source][:1]
    facts = dict(assess.params["plan"])
    del facts["steps"]
    operator = operator_class("plan.assess")(task_id="assess", step=assess.params["step"], plan=facts)
    assert isinstance(operator, PlanStepOperator)
    with pytest.raises(ContractError, match="the plan gave no 'steps'"):
        operator.facts  # noqa: B018 - what execute() reads first
    [(_, switch)] = [(p, t) for p, t in _tasks() if t.action == "plan.switch_dns"][:1]
    step = {k: v for k, v in switch.params["step"].items() if k != "hosted_zone_id"}
    with pytest.raises(ContractError, match=r"not a valid SwitchDnsAction: hosted_zone_id: Field required"):
        StepDefinition.from_params(step).spec_step(SwitchDnsAction)
    [(_, take)] = [(p, t) for p, t in _tasks() if t.action == "postgres.full_backup"][:1]
    with pytest.raises(ContractError, match="backup policy run: the plan gave no 'retention_days'"):
        BackupRun.from_params({k: v for k, v in take.params["run"].items() if k != "retention_days"})
