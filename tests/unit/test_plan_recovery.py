"""Recovery plans: the plan graph, plan facts, the trigger form, drafts, the plan checks, the example plans."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from drflow.contracts import ContractError, NodeFacts, PlanFacts, StepDefinition
from drflow.plan.build import build_plans
from drflow.plan.recovery import plan_facts, recovery_plan
from drflow.spec.load import load_spec, load_spec_text
from tests.unit.recovery_spec import EXAMPLE, SPEC, load, with_plan


@pytest.fixture
def spec(tmp_path: Path) -> Any:
    return load(SPEC, tmp_path).spec


def test_plan_graph_assess_declare_steps_record(spec: Any) -> None:
    plan = recovery_plan(spec, spec.recovery_plans[0], "specs/shop.yaml")
    assert plan.dag_id == "dr.shop.plan.failover" and plan.kind == "recovery-plan"
    assert [t.task_id for t in plan.tasks] == [
        "assess",
        "declare",
        "gate",
        "fence",
        "promote",
        "check",
        "tell",
        "record",
    ]
    assert [t.action for t in plan.tasks] == [
        "plan.assess",
        "plan.declare",
        "plan.gate_lag",
        "plan.fence",
        "plan.promote",
        "plan.validate_sql",
        "plan.manual",
        "plan.record",
    ]
    upstream = {t.task_id: t.upstream for t in plan.tasks}
    assert upstream["declare"] == ("assess",)
    assert upstream["gate"] == ("declare",) and upstream["fence"] == ("gate",)
    assert upstream["tell"] == ("promote",)  # explicit depends_on replaces "after the previous step"
    assert set(upstream["record"]) == {"check", "tell"}  # the leaves
    record = plan.task("record")
    assert (record.trigger_rule, record.teardown, record.retries) == ("all_done", True, 0)
    assert record.params["step"] == {"name": "record"}
    assert plan.task("gate").timeout_s == 120
    assert (
        plan.task("tell").timeout_s is None and plan.task("tell").retries is None
    )  # the spec's retries: escalation uses none
    assert plan.schedule is None and plan.max_active_runs == 1
    assert plan.deadline_s == 3600 and plan.criticality == "high"
    assert {"scenario:infrastructure-failure", "component:orders", "status:approved", "priority:high"} <= set(plan.tags)
    assert plan.tags.count("component:orders") == 1
    assert plan.task("assess").notify_on == {"execute": "activation", "failure": "step-failed"}


def test_plan_facts_follow_the_contract(spec: Any) -> None:
    facts = plan_facts(spec, spec.recovery_plans[0])
    assert PlanFacts.from_params(facts.to_params()) == facts  # what Airflow serializes reads back the same
    assert set(facts.to_params()) == {
        "spec",
        "plan",
        "scenario",
        "rto_s",
        "rpo_s",
        "primary_region",
        "recovery_region",
        "components",
        "notifications",
        "notify",
        "steps",
        "audit_conn_id",
        "escalation",
        "notes_conn_id",
        "service",
        "public_components",
        "internal_names",
    }
    assert (facts.rto_s, facts.rpo_s) == (3600, 600)
    orders = facts.components["orders"]
    assert orders.database == "orders" and orders.bin_dir == "/usr/lib/postgresql/15/bin"
    assert orders.nodes["primary"] == NodeFacts(conn_id="pg_primary", region="us-east-1")
    assert orders.nodes["replica-1"].slot == "replica_1"
    assert [t["name"] for t in orders.targets] == ["local-a"]
    assert facts.notifications["ops"].events == ("activation", "step-failed")
    assert facts.notify == ("ops",)
    assert [s.name for s in facts.steps] == ["gate", "fence", "promote", "check", "tell"]
    assert facts.audit_conn_id == "drflow_airflow_api"  # the default when the spec names none


def test_the_audit_connection_named_in_the_spec_reaches_the_plan_facts() -> None:
    text = SPEC.replace("version: 1\n", "version: 1\ndefaults: {audit_conn_id: shop_airflow_api}\n", 1)
    spec = load_spec_text(text, Path("shop.yaml")).spec
    plan = recovery_plan(spec, spec.recovery_plans[0], "shop.yaml")
    for task in plan.tasks:
        assert PlanFacts.from_params(task.params["plan"]).audit_conn_id == "shop_airflow_api"


def test_a_missing_plan_fact_is_a_contract_error_naming_it(spec: Any) -> None:
    params = plan_facts(spec, spec.recovery_plans[0]).to_params()
    del params["steps"]
    with pytest.raises(ContractError, match=r"plan facts: the plan gave no 'steps'.*drflow defect"):
        PlanFacts.from_params(params)


def test_step_params_are_the_spec_step_and_the_facts(spec: Any) -> None:
    plan = recovery_plan(spec, spec.recovery_plans[0], "specs/shop.yaml")
    gate = plan.task("gate").params
    assert gate["step"]["name"] == "gate" and gate["step"]["node"] == "replica-1"
    assert gate["step"]["timeout"] == "2m" and gate["plan"] == plan.notify
    declare = StepDefinition.from_params(plan.task("declare").params["step"])
    assert declare.approvers == ("bob", "carol") and declare.four_eyes is True
    assert declare.timeout == "30m" and declare.assess_tasks == ("assess",)
    assess = PlanFacts.from_params(plan.task("assess").params["plan"])
    assert [s.name for s in assess.steps] == ["gate", "fence", "promote", "check", "tell"]


def test_trigger_form_requires_a_reason(spec: Any) -> None:
    form = recovery_plan(spec, spec.recovery_plans[0], "s.yaml").params
    assert form["reason"]["type"] == "string" and form["reason"]["minLength"] == 1 and "default" not in form["reason"]
    assert form["target_region"]["enum"] == [None, "us-east-1", "us-west-2"]
    assert form["target_time"]["default"] is None and form["target_time"]["format"] == "date-time"
    assert form["override_safety"]["default"] is False
    assert "approved override" in form["override_safety"]["description"]
    assert set(form) == {"reason", "notes", "target_region", "target_time", "incident_started_at", "override_safety"}


def test_runbook_names_objectives_approvers_and_every_step(spec: Any) -> None:
    doc = recovery_plan(spec, spec.recovery_plans[0], "specs/shop.yaml").doc_md
    assert "**RTO** 1h · **RPO** 10m" in doc
    assert "approvers bob, carol, four eyes" in doc and "(not the person who triggered the run)" in doc
    for step in ("`gate` (automated: `gate_lag`", "`tell` (manual; after `promote`", "assigned to alice"):
        assert step in doc
    assert "> Tell the customers." in doc


def test_several_components_get_one_assessment_each_and_the_strictest_objectives(tmp_path: Path) -> None:
    text = with_plan("{name: fence, action: fence, component: orders}", components="[orders, users]")
    spec = load(text, tmp_path).spec
    plan = recovery_plan(spec, spec.recovery_plans[0], "s.yaml")
    assert [t.task_id for t in plan.tasks][:3] == ["assess-orders", "assess-users", "declare"]
    assert plan.task("declare").upstream == ("assess-orders", "assess-users")
    assert plan.deadline_s == 30 * 60 and plan.criticality == "critical" and plan.component is None
    assert {"component:orders", "component:users"} <= set(plan.tags)


@pytest.mark.parametrize("status", ["draft", "retired"])
def test_a_plan_that_is_not_approved_is_a_failing_paused_placeholder(tmp_path: Path, status: str) -> None:
    spec = load(SPEC.replace("status: approved", f"status: {status}"), tmp_path).spec
    plan = recovery_plan(spec, spec.recovery_plans[0], "specs/shop.yaml")
    assert plan.dag_id == "dr.shop.plan.failover" and plan.paused is True
    assert plan.description.startswith(f"{status.upper()} — not triggerable")
    assert [t.action for t in plan.tasks] == ["plan.draft"]
    assert f"status:{status}" in plan.tags and plan.params == {}
    message = plan.tasks[0].params["message"]
    assert message.startswith(f"plan 'failover' is {status} and cannot be run")
    if status == "draft":
        assert message.endswith("a reviewer must set status: approved in specs/shop.yaml")


def test_build_plans_adds_one_dag_per_plan(spec: Any) -> None:
    ids = [p.dag_id for p in build_plans(spec, "s.yaml")]
    assert ids.count("dr.shop.plan.failover") == 1


def test_the_example_spec_has_the_three_seed_procedures() -> None:
    loaded = load_spec(EXAMPLE)
    assert not [w for w in loaded.warnings if "plan" in w.path]
    plans = {p.dag_id: p for p in build_plans(loaded.spec, EXAMPLE) if p.kind == "recovery-plan"}
    assert set(plans) == {
        "dr.api-marketplace.plan.region-failover",
        "dr.api-marketplace.plan.data-corruption",
        "dr.api-marketplace.plan.security-incident",
    }
    failover = plans["dr.api-marketplace.plan.region-failover"]
    actions = [t.action for t in failover.tasks if t.action not in ("plan.assess",)]
    assert actions == [
        "plan.declare",
        "plan.gate_lag",
        "plan.fence",
        "plan.promote",
        "plan.switch_dns",
        "plan.validate_sql",
        "plan.notify",
        "plan.manual",
        "plan.record",
    ]
    assert failover.task("update-status-page").params["step"]["template"] == "update"
    corruption = plans["dr.api-marketplace.plan.data-corruption"]
    assert corruption.task("restore-to-point").params["step"]["point_in_time"] is True
    assert corruption.task("validate-restored").params["step"]["restored_by"] == "restore-to-point"
    incident = plans["dr.api-marketplace.plan.security-incident"]
    assert incident.task("restore-clean").params["step"]["before_incident"] is True
    assert incident.task("go-live").action == "plan.approval"


# -- plan checks -----------------------------------------------------------------------------------


def test_the_rendered_dag_has_the_deadline_the_form_and_a_teardown_record(
    spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.definitions.deadline import DeadlineReference
    from airflow.sdk.exceptions import ParamValidationError

    from drflow.render.airflow import render_dag

    plan = recovery_plan(spec, spec.recovery_plans[0], "s.yaml")
    dag = render_dag(plan)
    assert isinstance(dag.deadline, list)
    [alert] = dag.deadline
    assert isinstance(alert.interval, timedelta)
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT and alert.interval.total_seconds() == 3600
    assert dag.max_active_runs == 1 and dag.schedule is None
    record = dag.get_task("record")
    assert record.is_teardown and dag.get_task("tell").upstream_task_ids == {"promote"}
    assert {t.task_id for t in dag.get_task("declare").get_flat_relatives(upstream=False)} >= {"gate", "tell"}
    # The webhook channel listens to activation and step-failed only.
    assert len(dag.get_task("assess").on_execute_callback) == 1
    assert len(dag.get_task("gate").on_failure_callback) == 1 and not dag.on_success_callback
    with pytest.raises(ParamValidationError, match="No value passed"):
        copy.deepcopy(dag.params).validate()  # no reason, no run
    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError):
        params["reason"] = ""
    params["reason"] = "region down"
    assert params.validate()["reason"] == "region down"
    monkeypatch.setenv("DRFLOW_DEADLINES", "off")
    assert not render_dag(plan).deadline


def test_a_draft_dag_is_paused_and_fails_with_why(tmp_path: Path) -> None:
    from airflow.sdk import BaseOperator
    from airflow.sdk.exceptions import AirflowFailException

    from drflow.render.airflow import render_dag

    spec = load(SPEC.replace("status: approved", "status: draft"), tmp_path).spec
    dag = render_dag(recovery_plan(spec, spec.recovery_plans[0], "specs/shop.yaml"))
    assert dag.is_paused_upon_creation is True
    assert dag.description is not None and dag.description.startswith("DRAFT — not triggerable")
    [task] = dag.tasks
    assert isinstance(task, BaseOperator)
    with pytest.raises(AirflowFailException, match="a reviewer must set status: approved in specs/shop.yaml"):
        task.execute({})


def test_a_files_component_gives_its_plan_facts_its_backup_targets() -> None:
    """A plan that affects only file storage still keeps its recovery record in the store, not in XCom alone."""
    loaded = load_spec(EXAMPLE)
    assert loaded.spec is not None
    plan = loaded.spec.recovery_plans[0].model_copy(update={"components": ["portal-assets"]})
    facts = plan_facts(loaded.spec, plan).component("portal-assets")
    assert facts.database is None and {t["name"] for t in facts.targets} == {"s3-primary", "s3-secondary"}
