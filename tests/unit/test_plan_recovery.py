"""Recovery plans: the plan graph, plan facts, the trigger form, drafts, the plan checks, the example plans."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from drflow.plan.build import build_plans
from drflow.plan.contracts import ContractError, NodeFacts, PlanFacts, StepDefinition
from drflow.plan.recovery import plan_facts, recovery_plan
from drflow.spec.diagnostics import Diagnostic, SpecError
from drflow.spec.load import load_spec, load_spec_text

EXAMPLE = Path(__file__).resolve().parents[2] / "plan_specs" / "api-marketplace.yaml"

SPEC = """\
version: 1
metadata: {name: shop, owner: platform-team}
regions:
  - {name: us-east-1, role: primary}
  - {name: us-west-2}
storage:
  - {name: local-a, type: local, path: /tmp/drflow-unit-store, region: us-east-1}
components:
  - name: orders
    criticality: high
    rto: 1h
    rpo: 10m
    datastore:
      type: postgres
      database: orders
      primary: {conn_id: pg_primary, region: us-east-1}
      replicas:
        - {name: replica-1, conn_id: pg_replica, region: us-west-2, slot: replica_1}
    backups:
      - {name: daily-full, type: full, method: pg_basebackup, schedule: "0 2 * * *", targets: [local-a],
         retention: {days: 7}}
    drills:
      - {name: weekly, type: restore, schedule: "@weekly"}
  - name: users
    criticality: critical
    rto: 30m
    rpo: 5m
    datastore:
      type: postgres
      database: users
      primary: {conn_id: pg_primary, region: us-east-1}
    drills: []
notifications:
  - {name: ops, type: webhook, conn_id: ops_hook, events: [activation, step-failed]}
recovery_plans:
  - name: failover
    scenario: infrastructure-failure
    status: approved
    components: [orders]
    primary_region: us-east-1
    recovery_region: us-west-2
    approval: {approvers: [bob, carol]}
    notify: [ops]
    steps:
      - {name: gate, action: gate_lag, component: orders, node: replica-1, timeout: 2m}
      - {name: fence, action: fence, component: orders}
      - {name: promote, action: promote, component: orders, node: replica-1}
      - {name: check, action: validate_sql, component: orders, node: replica-1,
         checks: [{name: writable, query: select not pg_is_in_recovery(), expected: "true"}]}
      - name: tell
        type: manual
        assignees: [alice]
        instructions: Tell the customers.
        depends_on: [promote]
"""


def load(text: str, tmp_path: Path) -> Any:
    return load_spec_text(text, tmp_path / "shop.yaml")


def diagnostics(text: str, tmp_path: Path) -> list[Diagnostic]:
    try:
        return load(text, tmp_path).warnings
    except SpecError as exc:
        return exc.diagnostics


def messages(text: str, tmp_path: Path, severity: str = "error") -> list[str]:
    return [f"{d.line}: {d.message}; {d.hint}" for d in diagnostics(text, tmp_path) if d.severity == severity]


def with_plan(steps: str, *, approval: str = "{approvers: [bob, carol]}", components: str = "[orders]") -> str:
    head = SPEC.split("recovery_plans:")[0]
    return (
        head
        + "recovery_plans:\n  - name: p\n    scenario: data-corruption\n    status: approved\n"
        + f"    components: {components}\n    approval: {approval}\n    steps:\n"
        + "".join(f"      - {line}\n" for line in steps.strip().splitlines())
    )


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
    assert plan.task("tell").timeout_s is None and plan.task("tell").retries == 0  # people answer by the step timeout
    assert plan.schedule is None and plan.max_active_runs == 1
    assert plan.deadline_s == 3600 and plan.criticality == "high"
    assert {"scenario:infrastructure-failure", "component:orders", "status:approved", "criticality:high"} <= set(
        plan.tags
    )
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
    assert "bob, carol — four eyes" in doc
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
        "plan.manual",
        "plan.record",
    ]
    corruption = plans["dr.api-marketplace.plan.data-corruption"]
    assert corruption.task("restore-to-point").params["step"]["point_in_time"] is True
    assert corruption.task("validate-restored").params["step"]["restored_by"] == "restore-to-point"
    incident = plans["dr.api-marketplace.plan.security-incident"]
    assert incident.task("restore-clean").params["step"]["before_incident"] is True
    assert incident.task("go-live").action == "plan.approval"


# -- plan checks -----------------------------------------------------------------------------------


def test_the_base_spec_has_no_plan_findings(tmp_path: Path) -> None:
    assert not [d for d in diagnostics(SPEC, tmp_path) if "recovery_plans" in d.path]


def test_duplicate_and_reserved_step_names(tmp_path: Path) -> None:
    found = messages(
        with_plan(
            """
{name: fence, action: fence, component: orders}
{name: fence, action: fence, component: orders}
{name: record, action: fence, component: orders}
"""
        ),
        tmp_path,
    )
    assert any("step name 'fence' is used twice in plan 'p'" in m for m in found)
    assert any("step name 'record' is taken in plan 'p'" in m for m in found)


def test_unknown_dependency_with_did_you_mean(tmp_path: Path) -> None:
    found = messages(
        with_plan(
            """
{name: fence-primary, action: fence, component: orders}
{name: promote, action: promote, component: orders, node: replica-1, depends_on: [fence-primry]}
"""
        ),
        tmp_path,
    )
    [message] = [m for m in found if "depends on step" in m]
    assert "step 'promote' depends on step 'fence-primry', which is not in plan 'p'" in message
    assert "did you mean 'fence-primary'?" in message


def test_a_dependency_cycle_is_named(tmp_path: Path) -> None:
    found = messages(
        with_plan(
            """
{name: a, action: fence, component: orders, depends_on: [c]}
{name: b, action: fence, component: orders, depends_on: [a]}
{name: c, action: fence, component: orders, depends_on: [b]}
"""
        ),
        tmp_path,
    )
    [cycle] = [m for m in found if "cycle" in m]
    assert "a → c → b → a" in cycle


def test_a_forward_dependency_through_the_default_order_is_a_cycle(tmp_path: Path) -> None:
    found = messages(
        with_plan(
            """
{name: a, action: fence, component: orders, depends_on: [c]}
{name: b, action: fence, component: orders}
{name: c, action: fence, component: orders}
"""
        ),
        tmp_path,
    )
    assert any("a → c → b → a" in m for m in found)


def test_unknown_components_nodes_channels_and_regions(tmp_path: Path) -> None:
    text = with_plan(
        """
{name: fence, action: fence, component: orders, node: replica-2}
{name: promote, action: promote, component: users, node: replica-1}
{name: tell, action: notify, channels: [opz], message: hi}
"""
    ).replace("    components: [orders]\n", "    components: [orders, billing]\n    recovery_region: us-west-3\n")
    found = messages(text, tmp_path)
    assert any("names component 'billing', which the spec does not declare" in m for m in found)
    assert any("names node 'replica-2' (node), which component 'orders' does not have" in m for m in found)
    assert any("did you mean 'replica-1'?" in m for m in found)
    assert any("acts on component 'users', which the plan does not list as affected" in m for m in found)
    assert any("names node 'replica-1' (node), which component 'users' does not have" in m for m in found)
    assert any("notifies channel 'opz', which is not defined; did you mean 'ops'?" in m for m in found)
    assert any("uses region 'us-west-3', which is not declared" in m for m in found)


def test_validating_restored_data_needs_a_restore_before_it(tmp_path: Path) -> None:
    checks = "checks: [{name: n, query: select 1, expected: '1'}]"
    found = messages(
        with_plan(f"{{name: v, action: validate_sql, component: orders, node: restored, {checks}}}"), tmp_path
    )
    assert any("validates the restored database, but no restore of 'orders' runs before it" in m for m in found)
    ok = with_plan(
        f"""
{{name: r, action: restore, component: orders}}
{{name: v, action: validate_sql, component: orders, node: restored, {checks}}}
"""
    )
    assert not [m for m in messages(ok, tmp_path) if "restored" in m]


def test_restore_checks(tmp_path: Path) -> None:
    found = messages(
        with_plan(
            "{name: r, action: restore, component: orders, target: local-b, point_in_time: true, before_incident: true}"
        ),
        tmp_path,
    )
    assert any("both to a point in time and to before the incident" in m for m in found)
    assert any("from storage target 'local-b', which gets none of its backups" in m for m in found)
    errors = messages(with_plan("{name: r, action: restore, component: orders, point_in_time: true}"), tmp_path)
    assert any("needs WAL archiving" in m and "could never run" in m for m in errors)


def test_four_eyes_with_one_approver_warns(tmp_path: Path) -> None:
    text = with_plan("{name: fence, action: fence, component: orders}", approval="{approvers: [bob]}")
    [warning] = [m for m in messages(text, tmp_path, "warning") if "approver" in m]
    assert "single approver, 'bob', and four eyes" in warning and "four_eyes: false" in warning
    alone = with_plan(
        "{name: fence, action: fence, component: orders}", approval="{approvers: [bob], four_eyes: false}"
    )
    assert not [m for m in messages(alone, tmp_path, "warning") if "approver" in m]


def test_a_rebuild_needs_a_replication_connection_on_the_node_it_follows(tmp_path: Path) -> None:
    step = "{name: rebuild, action: rebuild_replica, component: orders, node: primary, source: replica-1}"
    [error] = [m for m in messages(with_plan(step), tmp_path) if "replication_conn_id" in m]
    assert "follows node 'replica-1' of 'orders', which names no replication_conn_id" in error
    assert "set replication_conn_id on node 'replica-1'" in error and "WITH LOGIN REPLICATION" in error
    named = with_plan(step).replace("slot: replica_1}", "slot: replica_1, replication_conn_id: pg_replica_repl}")
    assert not [m for m in messages(named, tmp_path) if "replication_conn_id" in m]
    plan = recovery_plan(load(named, tmp_path).spec, load(named, tmp_path).spec.recovery_plans[0], "s.yaml")
    nodes = plan.task("rebuild").params["plan"]["components"]["orders"]["nodes"]
    assert nodes["replica-1"]["replication_conn_id"] == "pg_replica_repl"


def test_approval_steps_take_four_eyes_from_the_plan_unless_they_say(tmp_path: Path) -> None:
    steps = """
{name: go, type: approval, approvers: [bob, carol]}
{name: go-alone, type: approval, approvers: [bob, carol], four_eyes: false}
"""
    loaded = load(with_plan(steps), tmp_path).spec
    plan = recovery_plan(loaded, loaded.recovery_plans[0], "s.yaml")
    assert plan.task("go").params["step"]["four_eyes"] is True
    assert plan.task("go-alone").params["step"]["four_eyes"] is False
    assert "approvers bob, carol, four eyes)" in plan.doc_md
    relaxed = load(with_plan(steps, approval="{approvers: [bob, carol], four_eyes: false}"), tmp_path).spec
    assert recovery_plan(relaxed, relaxed.recovery_plans[0], "s.yaml").task("go").params["step"]["four_eyes"] is False


def test_overrides_are_allowed_per_step(tmp_path: Path) -> None:
    steps = """
{name: gate, action: gate_lag, component: orders, node: replica-1, allow_override: true}
{name: fence, action: fence, component: orders}
"""
    loaded = load(with_plan(steps), tmp_path).spec
    plan = recovery_plan(loaded, loaded.recovery_plans[0], "s.yaml")
    assert plan.task("gate").params["step"]["allow_override"] is True
    assert plan.task("fence").params["step"]["allow_override"] is False
    assert "`gate` (automated: `gate_lag`; after `declare`; override allowed)" in plan.doc_md


def test_promote_without_fence_or_gate_before_it_warns(tmp_path: Path) -> None:
    bare = with_plan("{name: promote, action: promote, component: orders, node: replica-1}")
    assert any("no fence or gate_lag step before it" in m for m in messages(bare, tmp_path, "warning"))
    guarded = with_plan(
        """
{name: fence, action: fence, component: orders}
{name: promote, action: promote, component: orders, node: replica-1}
"""
    )
    assert not any("no fence or gate_lag" in m for m in messages(guarded, tmp_path, "warning"))


# -- the Airflow DAG -------------------------------------------------------------------------------


def test_the_rendered_dag_has_the_deadline_the_form_and_a_teardown_record(
    spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.definitions.deadline import DeadlineReference
    from airflow.sdk.exceptions import ParamValidationError

    from drflow.render.airflow import render_dag

    plan = recovery_plan(spec, spec.recovery_plans[0], "s.yaml")
    dag = render_dag(plan)
    [alert] = dag.deadline
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
    from airflow.sdk.exceptions import AirflowFailException

    from drflow.render.airflow import render_dag

    spec = load(SPEC.replace("status: approved", "status: draft"), tmp_path).spec
    dag = render_dag(recovery_plan(spec, spec.recovery_plans[0], "specs/shop.yaml"))
    assert dag.is_paused_upon_creation is True and dag.description.startswith("DRAFT — not triggerable")
    [task] = dag.tasks
    with pytest.raises(AirflowFailException, match="a reviewer must set status: approved in specs/shop.yaml"):
        task.execute({})


def test_a_mistyped_action_is_reported_at_the_action_line(tmp_path: Path) -> None:
    text = with_plan("{name: gate, action: gate-lag, component: orders, node: r1}")
    [found] = [d for d in diagnostics(text, tmp_path) if "gate-lag" in d.message]
    assert found.path.endswith("steps[gate].action")
    assert found.message == "there is no steps action 'gate-lag'"
    assert found.hint.startswith("did you mean 'gate_lag'?")
    line = text.splitlines()[found.line - 1]
    assert line[found.col - 1 :].startswith("gate-lag")
