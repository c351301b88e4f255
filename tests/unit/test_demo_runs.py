"""`make demo` backs up and drills one component of each source type of the example spec, by DAGs that exist."""

from __future__ import annotations

from drflow.devtools.demo import DEMO_CONFIG_COMPONENTS, DEMO_RUNS, SPEC
from drflow.plan.build import build_plans
from drflow.spec.load import load_spec


def test_the_demo_runs_a_backup_and_a_drill_of_every_source_type() -> None:
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
