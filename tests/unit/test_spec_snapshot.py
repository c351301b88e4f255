"""Snapshot sources in the spec: the model, the system-image preset, the checks, the plan and the JSON Schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from drflow.contracts import ContractError, RpoReportRun, SnapshotDrillRun, SnapshotRun
from drflow.plan.build import build_plans
from drflow.spec.diagnostics import Diagnostic, SpecError
from drflow.spec.load import LoadedSpec, load_spec_text
from drflow.spec.schema import json_schema

SPEC = """\
version: 1
metadata: {name: images, owner: ops}
regions:
  - {name: us-east-1, role: primary}
  - {name: us-west-2}
  - {name: eu-west-1}
storage:
  - {name: vault, type: local, path: /tmp/drflow-images, region: us-east-1}
components:
  - name: analytics
    criticality: high
    rto: 2h
    rpo: 8d
    snapshots:
      type: snapshot
      conn_id: aws_analytics
      region: us-east-1
      ebs: {tags: {app: analytics}}
    backups:
      - {preset: system-image, targets: [vault], retention: {days: 35}}
    drills:
      - {name: volume, type: restore, schedule: "0 6 * * 1"}
"""


def load(text: str, tmp_path: Path) -> LoadedSpec:
    return load_spec_text(text, tmp_path / "spec.yaml")


def only_error(text: str, tmp_path: Path) -> Diagnostic:
    with pytest.raises(SpecError) as caught:
        load(text, tmp_path)
    errors = caught.value.errors
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def test_the_system_image_preset_is_a_weekly_snapshot(tmp_path: Path) -> None:
    loaded = load(SPEC, tmp_path)
    assert loaded.warnings == []
    component = loaded.spec.component("analytics")
    [policy] = component.backup_policies
    assert (policy.name, policy.type, policy.method, policy.schedule) == (
        "weekly-snapshot",
        "snapshot",
        "snapshot",
        "0 3 * * 0",
    )
    assert component.snapshots is not None and component.snapshots.kind == "ebs"


def test_backup_and_drill_dags_copy_to_every_secondary_region(tmp_path: Path) -> None:
    loaded = load(SPEC, tmp_path)
    plans = {plan.dag_id: plan for plan in build_plans(loaded.spec, "spec.yaml")}
    backup = plans["dr.images.analytics.backup.weekly-snapshot"]
    assert [t.task_id for t in backup.tasks] == ["take_backup", "verify_backup"]
    run = SnapshotRun.from_params(backup.tasks[0].params["snapshot"])
    assert run.copy_to == ("us-west-2", "eu-west-1") and run.volume_tags == {"app": "analytics"}
    drill = plans["dr.images.analytics.drill.volume"]
    [task] = drill.tasks
    drilled = SnapshotDrillRun.from_params(task.params["drill"])
    assert (task.action, drilled.region, drilled.facts.rto_s) == ("snapshot.drill", "us-west-2", 7200)
    assert drilled.snapshot == run
    with pytest.raises(ContractError, match="the plan gave no 'region'"):
        SnapshotRun.from_params({k: v for k, v in task.params["drill"]["snapshot"].items() if k != "region"})


def test_copy_to_names_the_regions(tmp_path: Path) -> None:
    text = SPEC.replace("      region: us-east-1\n", "      region: us-east-1\n      copy_to: [eu-west-1]\n")
    plans = {plan.dag_id: plan for plan in build_plans(load(text, tmp_path).spec, "spec.yaml")}
    run = SnapshotRun.from_params(plans["dr.images.analytics.backup.weekly-snapshot"].tasks[0].params["snapshot"])
    assert run.copy_to == ("eu-west-1",)


def test_volumes_named_both_ways_are_an_error_at_the_line(tmp_path: Path) -> None:
    text = SPEC.replace("ebs: {tags: {app: analytics}}", "ebs: {volume_id: vol-0abc12345def67890, tags: {app: a}}")
    error = only_error(text, tmp_path)
    assert error.line == 18 and "either by volume_id or by tags" in error.message


def test_ebs_and_rds_together_are_an_error(tmp_path: Path) -> None:
    text = SPEC.replace(
        "      ebs: {tags: {app: analytics}}\n", "      ebs: {tags: {app: a}}\n      rds: {db_instance: x}\n"
    )
    assert "exactly one of ebs" in only_error(text, tmp_path).message


def test_a_snapshot_policy_without_a_snapshot_source_says_what_to_add(tmp_path: Path) -> None:
    start, end = SPEC.index("    snapshots:"), SPEC.index("    backups:")
    error = only_error(SPEC[:start] + SPEC[end:], tmp_path)
    assert "no 'snapshots:' source" in error.message and "add snapshots:" in (error.hint or "")


def test_an_undeclared_copy_region_is_an_error(tmp_path: Path) -> None:
    text = SPEC.replace("      region: us-east-1\n", "      region: us-east-1\n      copy_to: [ap-south-1]\n")
    error = only_error(text, tmp_path)
    assert "region 'ap-south-1', which is not declared" in error.message


def test_the_json_schema_takes_snapshot_sources() -> None:
    import yaml

    validator = jsonschema.Draft202012Validator(json_schema())
    data = yaml.safe_load(SPEC)
    assert list(validator.iter_errors(data)) == []
    data["components"][0]["snapshots"]["ebs"]["volume"] = "vol-1"
    assert list(validator.iter_errors(data))


def test_the_rpo_report_covers_a_component_with_snapshots_only(tmp_path: Path) -> None:
    plans = {plan.dag_id: plan for plan in build_plans(load(SPEC, tmp_path).spec, "spec.yaml")}
    [task] = plans["dr.images.rpo-compliance"].tasks
    [facts] = RpoReportRun.from_params(task.params["report"]).components
    assert (facts.name, facts.replicas, facts.targets[0]["name"]) == ("analytics", (), "vault")


def test_weekly_snapshots_cannot_meet_an_hourly_rpo(tmp_path: Path) -> None:
    [warning] = load(SPEC.replace("rpo: 8d", "rpo: 1h"), tmp_path).warnings
    assert warning.path.endswith("rpo") and "RPO of 1h cannot be met: backups are up to 1w apart" in warning.message
