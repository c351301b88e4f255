"""Recovery plans: the plan checks (dependencies, references, restores, four eyes, overrides, actions)."""

from __future__ import annotations

from pathlib import Path

from drflow.plan.recovery import recovery_plan
from tests.unit.recovery_spec import SPEC, diagnostics, load, messages, with_plan


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
    assert "`gate` (automated: `gate_lag`; after `declare`; retries 2; override allowed)" in plan.doc_md


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


def test_a_mistyped_action_is_reported_at_the_action_line(tmp_path: Path) -> None:
    text = with_plan("{name: gate, action: gate-lag, component: orders, node: r1}")
    [found] = [d for d in diagnostics(text, tmp_path) if "gate-lag" in d.message]
    assert found.path.endswith("steps[gate].action")
    assert found.message == "there is no steps action 'gate-lag'"
    assert found.hint.startswith("did you mean 'gate_lag'?")
    line = text.splitlines()[found.line - 1]
    assert line[found.col - 1 :].startswith("gate-lag")
