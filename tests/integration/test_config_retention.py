"""Retention of configuration versions in a local directory and moto S3 (over HTTP): versions older than the
config section's days are pruned, never the newest, never below min_copies; a blob goes only when no kept
version names it; every target on its own. Real versions of a real directory; only the clock moves."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from drflow.cli.main import app
from drflow.contracts import RetentionRun
from drflow.jobs.config import back_up_config, component_versions, restore_version
from drflow.jobs.config_retention import expire_config
from drflow.operators.retention import ExpireOperator
from drflow.plan.compile import compile_specs
from drflow.spec.config import ConfigSource
from drflow.store.config_versions import ConfigVersion, new_version_id
from tests.integration.test_config_versions import write_routes


def _versions(routes: Path, targets: list[dict[str, Any]]) -> list[str]:
    """Four versions: a+b, a changed, b changed, c added (a blob of the first two is named by no later one)."""
    source = ConfigSource(kind="directory", path=str(routes))
    ids = []
    for files in (
        {"a.yaml": "a: 1\n", "b.yaml": "b: 1\n"},
        {"a.yaml": "a: 2\n"},
        {"b.yaml": "b: 2\n"},
        {"c.yaml": "c: 1\n"},
    ):
        write_routes(routes, files)
        outcome = back_up_config("api", "gateway", source, targets, retention_days=1)
        assert set(outcome.stored) == {t["name"] for t in targets}
        ids.append(next(iter(outcome.stored.values())))
    return ids


def _blobs(target: dict[str, Any]) -> set[str]:
    versions = component_versions("api", "gateway", target)
    prefix = versions.blob_key("")
    return {key[len(prefix) :] for key in versions.store.list_keys(prefix)}


def _named(versions: list[ConfigVersion]) -> set[str]:
    return {f.sha256 for v in versions for f in v.files}


def test_old_config_versions_are_pruned_keeping_the_newest_min_copies_and_every_kept_blob(
    tmp_path: Path, local_target: dict[str, Any], s3_target: dict[str, Any]
) -> None:
    routes = tmp_path / "routes"
    targets = [local_target, s3_target]
    v1, v2, v3, v4 = _versions(routes, targets)
    later = datetime.now(UTC) + timedelta(days=3)
    before = {t["name"]: component_versions("api", "gateway", t).versions() for t in targets}
    gone_blobs = _named(before["test-s3"][:2]) - _named(before["test-s3"][2:])
    assert gone_blobs  # "a: 1" and "a: 2" only live in the first two versions

    # Dry run: what would go and why the rest stays; nothing deleted.
    dry = expire_config("api", "gateway", targets, 1, 2, later, dry_run=True).to_dict()
    for target in dry["targets"]:
        assert [r["version_id"] for r in target["delete"]] == [v1, v2]
        assert {r["version_id"]: r["reason"] for r in target["keep"]} == {
            v3: "one of the 2 newest versions (min_copies)",
            v4: "newest version",
        }
        assert set(target["blobs"]) == gone_blobs
    assert all(len(component_versions("api", "gateway", t).versions()) == 4 for t in targets)

    # A target that cannot be read is reported and never stops the others.
    broken = dict(s3_target, name="test-gone", bucket="drflow-no-such-bucket")
    done = expire_config("api", "gateway", [broken, *targets], 1, 2, later, dry_run=False)
    assert [p.split(":")[0] for p in done.problems] == ["config in test-gone"]
    for target in targets:
        versions = component_versions("api", "gateway", target)
        kept = versions.versions()
        assert [v.version_id for v in kept] == [v3, v4]
        assert _blobs(target) == _named(kept), target["name"]  # every kept blob is there, nothing else
        v3_version = versions.get(v3)
        assert restore_version(versions, v3_version, tmp_path / f"restored-{target['name']}") == v3_version.sha256

    # Within days, or at min_copies, nothing goes; never the newest, whatever min_copies says.
    assert not any(v.delete for t in expire_config("api", "gateway", targets, 30, 1, later, dry_run=True).targets
                   for v in t.verdicts)  # fmt: skip
    last = expire_config("api", "gateway", targets, 1, 1, later + timedelta(days=1), dry_run=False)
    for target in last.targets:
        assert target.deleted == [v3] and target.error is None
    for target in targets:
        assert [v.version_id for v in component_versions("api", "gateway", target).versions()] == [v4]


def test_drflow_expire_and_the_retention_dag_prune_config_versions(tmp_path: Path) -> None:
    routes, store = tmp_path / "routes", tmp_path / "store"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nmetadata: {name: api, owner: t}\nregions: [{name: r1, role: primary}]\n"
        f"storage: [{{name: local-store, type: local, path: {store}, region: r1}}]\n"
        "components:\n  - name: gateway\n    criticality: low\n    rto: 1h\n    rpo: 1h\n"
        f"    config: {{type: directory, path: {routes}, targets: [local-store], "
        "retention: {days: 1, min_copies: 2}}\n"
    )
    target = {"name": "local-store", "type": "local", "path": str(store)}
    v1, v2, v3, v4 = _versions(routes, [target])
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    runner = CliRunner()
    base = ["expire", "--spec", str(spec), "--now", later]

    dry = runner.invoke(app, [*base, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"gateway config in local-store: would delete version {v1}: older than 1 days" in dry.output
    assert f"gateway config in local-store: keep version {v4}: newest version" in dry.output
    assert "would delete 2 blobs no kept version names" in dry.output
    assert len(component_versions("api", "gateway", target).versions()) == 4

    done = runner.invoke(app, [*base, "--json"])
    assert done.exit_code == 0, done.output
    [report] = json.loads(done.output)
    assert report["config"]["targets"][0]["deleted"] == [v1, v2]
    assert [v.version_id for v in component_versions("api", "gateway", target).versions()] == [v3, v4]

    # The retention DAG has a task for the config-only component, its contract carrying the config retention.
    [plan] = [p for p in compile_specs([spec]) if p.kind == "retention"]
    [task] = plan.tasks
    run = RetentionRun.from_params(task.params["retention"])
    assert run.config is not None and (run.config.days, run.config.min_copies) == (1, 2)
    assert [t["name"] for t in run.config.targets] == ["local-store"] and run.policies == ()

    # The retention task prunes with the real clock: a version taken ten days ago goes, the two newest stay.
    versions = component_versions("api", "gateway", target)
    old_time = datetime.now(UTC) - timedelta(days=10)
    kept3 = versions.get(v3)
    old = replace(kept3, version_id=new_version_id(kept3.sha256, old_time), taken_at=old_time.isoformat())
    versions.commit(old)
    result = ExpireOperator(task_id=task.task_id, **task.params).execute({})
    assert result["config"]["targets"][0]["deleted"] == [old.version_id]
    assert [v.version_id for v in versions.versions()] == [v3, v4]
