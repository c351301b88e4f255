"""`make demo` backs up and drills every component of the example spec, by DAGs that exist."""

from __future__ import annotations

from drflow.devtools.demo import DEMO_CONFIG_COMPONENTS, DEMO_RUNS, SPEC, drill_refs
from drflow.plan.build import build_plans
from drflow.spec.load import load_spec


def test_the_demo_runs_a_backup_and_a_drill_of_every_component() -> None:
    spec = load_spec(SPEC).spec
    plans = {plan.dag_id: plan for plan in build_plans(spec, SPEC.name)}
    kinds = set()
    for run in DEMO_RUNS:
        backup, drill = run.dag_ids(spec.metadata.name)
        assert plans[backup].kind == "backup" and plans[drill].kind == "restore-drill", run
        component = spec.component(run.component)
        [policy] = [p for p in component.backup_policies if p.name == run.policy]
        kinds.add({"pg_basebackup": "database", "files": "files", "snapshot": "snapshot"}[policy.method])
        if policy.method == "files":
            assert policy.type == "full"  # a drill needs a chain that starts with a full
    for name in DEMO_CONFIG_COMPONENTS:
        assert spec.component(name).config is not None
        assert f"dr.{spec.metadata.name}.{name}.backup.config" in plans
        kinds.add("config")
    assert kinds == {"database", "files", "snapshot", "config"}
    assert {run.component for run in DEMO_RUNS} == {c.name for c in spec.components}


def test_the_final_table_has_a_row_per_service_with_every_drill() -> None:
    spec = load_spec(SPEC).spec
    refs = drill_refs(spec)
    services = {ref.service for ref in refs}
    assert services == {"api-gateway", "api-portal", "api-catalog", "user-database", "analytics", "billing"}
    assert {(ref.component, ref.drill) for ref in refs if ref.service == "api-portal"} == {
        ("api-portal", "weekly-restore"),
        ("portal-assets", "weekly-tree"),
    }
    assert ("api-gateway", "config") in {(ref.component, ref.drill) for ref in refs}
    for ref in refs:  # the drill names the reports carry: the spec's, or `config` for a config drill
        component = spec.component(ref.component)
        assert ref.drill == "config" or ref.drill in {d.name for d in component.drills}
