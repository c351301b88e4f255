"""The plan graph built from the API Marketplace spec, without Airflow."""

from pathlib import Path

import pytest

from drflow.contracts import BackupRun, DrillReportRun
from drflow.plan.build import build_plans, error_plan
from drflow.plan.compile import compile_specs
from drflow.plan.diff import diff_plans
from drflow.plan.graph import DagPlan
from drflow.spec.load import load_spec

SPEC = Path(__file__).resolve().parents[2] / "plan_specs" / "api-marketplace.yaml"
COMPONENTS = ["api-gateway", "api-portal", "api-catalog", "user-database", "analytics", "billing"]


@pytest.fixture(scope="module")
def plans() -> list[DagPlan]:
    return build_plans(load_spec(SPEC).spec, SPEC)


def test_every_component_gets_a_backup_and_a_drill_dag(plans: list[DagPlan]) -> None:
    ids = {p.dag_id for p in plans}
    for component in COMPONENTS:
        assert f"dr.api-marketplace.{component}.backup.daily-full" in ids
        assert any(i.startswith(f"dr.api-marketplace.{component}.drill.") for i in ids)


def test_tags_owner_and_retries_come_from_the_spec(plans: list[DagPlan]) -> None:
    plan = next(p for p in plans if p.dag_id == "dr.api-marketplace.user-database.backup.daily-full")
    assert plan.tags == [
        "component:user-database",
        "kind:backup",
        "managed-by:drflow",
        "spec:api-marketplace",
        "priority:critical",
    ]
    assert plan.owner == "platform-team"
    assert plan.schedule == "0 2 * * *"
    assert [t.task_id for t in plan.tasks] == ["check_source", "take_backup", "verify_backup"]
    assert plan.task("take_backup").upstream == ("check_source",)
    assert "RTO 30m, RPO 5m" in plan.doc_md


def test_backup_task_records_the_drill_queries_and_never_a_secret(plans: list[DagPlan]) -> None:
    take = next(p for p in plans if p.dag_id == "dr.api-marketplace.billing.backup.daily-full").task("take_backup")
    run = BackupRun.from_params(take.params["run"])
    assert {q["name"] for q in run.validation} >= {"invoices-count"}
    assert run.conn_id == "drflow_pg_primary"
    assert [t["name"] for t in run.targets] == ["s3-primary", "s3-secondary"]
    assert "password" not in str(take.params).lower()


def test_drill_plan_carries_objectives_in_seconds(plans: list[DagPlan]) -> None:
    drill = next(p for p in plans if p.kind == "restore-drill" and p.component == "api-gateway")
    report = DrillReportRun.from_params(drill.task("record_report").params["drill"])
    assert (report.facts.rto_s, report.facts.rpo_s) == (15 * 60, 5 * 60)
    assert "backup_id" in drill.params


def test_a_broken_spec_becomes_an_error_dag_and_hides_nothing(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(SPEC.read_text())
    (tmp_path / "broken.yaml").write_text("version: 1\nmetadata: {name: broken, owner: x}\ncomponents: 7\n")
    plans = compile_specs([tmp_path])
    errors = [p for p in plans if p.error]
    assert [p.dag_id for p in errors] == ["dr.broken.spec-error"]
    assert "broken.yaml:3:" in errors[0].doc_md
    assert sum(1 for p in plans if p.spec == "api-marketplace") >= 12


def test_error_plan_lists_every_error() -> None:
    plan = error_plan("specs/x.yaml", ["specs/x.yaml:1:1: a: bad; fix", "specs/x.yaml:2:1: b: bad; fix"])
    assert plan.kind == "spec-error" and plan.dag_id == "dr.x.spec-error"
    assert "- `specs/x.yaml:1:1: a: bad; fix`" in plan.doc_md
    assert "- `specs/x.yaml:2:1: b: bad; fix`" in plan.doc_md
    assert plan.description.startswith("INVALID SPEC: specs/x.yaml:1:1")


def test_diff_shows_added_removed_and_changed(tmp_path: Path) -> None:
    before = build_plans(load_spec(SPEC).spec, SPEC)
    changed = tmp_path / "api-marketplace.yaml"
    changed.write_text(SPEC.read_text().replace("0 2 * * *", "30 1 * * *", 1))
    after = build_plans(load_spec(changed).spec, SPEC)
    diff = diff_plans(before, after)
    assert diff["added"] == diff["removed"] == []
    moved = dict(diff["changed"])
    schedule, shared = moved.pop(before[0].dag_id)
    assert schedule == "schedule: '0 2 * * *' → '30 1 * * *'"
    # Another schedule: it no longer shares the cluster's daily base backup with the components on its cluster.
    assert shared.startswith("~ task take_backup.run.cluster: ") and shared.endswith(" → None")
    members = "~ task take_backup.run.cluster.members"
    assert moved and all([line.split(":")[0] for line in lines] == [members] for lines in moved.values())
    diff = diff_plans(before, after[1:])
    assert diff["removed"] == [before[0].dag_id]


def test_diff_names_the_changed_leaf_of_nested_parameters(tmp_path: Path) -> None:
    before = build_plans(load_spec(SPEC).spec, SPEC)
    changed = tmp_path / "api-marketplace.yaml"
    changed.write_text(SPEC.read_text().replace("rpo: 15m", "rpo: 10m", 1))
    diff = diff_plans(before, build_plans(load_spec(changed).spec, SPEC))
    assert diff["changed"]["dr.api-marketplace.billing.drill.weekly-restore"] == [
        "~ task record_report.drill.rpo_s: 900 → 600"
    ]
    plan_lines = diff["changed"]["dr.api-marketplace.plan.region-failover"]
    assert "~ task declare.plan.components.billing.rpo_s: 900 → 600" in plan_lines
    assert all(len(line) < 120 for line in plan_lines)
