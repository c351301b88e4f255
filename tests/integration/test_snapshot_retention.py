"""Retention of snapshot entries against a moto server over HTTP: expired entries' EBS and RDS snapshots are
deleted in every region they were copied to (min_copies, pins and locks hold as for any entry), the record goes
only once they are gone, and a region that fails is reported without blocking the others. Only the clock moves."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from drflow.cli.main import app
from drflow.contracts import RetentionRun
from drflow.jobs.retention import expire_component
from drflow.jobs.snapshot import SnapshotSource, take_snapshot_backup
from drflow.plan.compile import compile_specs
from drflow.retention import RetentionPolicy
from drflow.store.expiry import PolicyRules
from drflow.store.factory import target_catalogs
from drflow.store.manifest import BackupManifest
from drflow.store.pins import Pin, write_pin
from tests.fixtures.s3 import MotoServer
from tests.integration.test_snapshots import (  # noqa: F401 (fixtures)
    FAST,
    PRIMARY,
    SECONDARY,
    client,
    db_instance,
    request_for,
    tagged_volume,
)

SPEC, COMPONENT = "snapshots-test", "analytics"
RULES = {"weekly-snapshot": PolicyRules(days=1, min_copies=2)}


def _take(
    source: SnapshotSource, targets: list[dict[str, Any]], n: int, policy: RetentionPolicy = "standard"
) -> BackupManifest:
    backup_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}{n:02d}Z-weekly-snapshot-{uuid.uuid4().hex[:6]}"
    request = replace(request_for(source, targets, backup_id), retention_policy=policy)
    return take_snapshot_backup(request)


def _ids(m: BackupManifest) -> dict[str, list[str]]:
    return {r: [s["regions"][r]["snapshot_id"] for s in m.extra["snapshots"]] for r in (PRIMARY, SECONDARY)}


def _ebs_exists(server: MotoServer, region: str, snapshot_id: str) -> bool:
    try:
        client(server, "ec2", region).describe_snapshots(SnapshotIds=[snapshot_id])
    except ClientError:
        return False
    return True


def _recorded(targets: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {n: {m.backup_id for m in c.list_backups(COMPONENT)} for n, c in target_catalogs(SPEC, targets)}


@pytest.mark.slow
def test_expired_ebs_snapshots_go_in_every_region_keeping_min_copies_pins_and_locks(
    moto_server: MotoServer,
    s3_conn_id: str,
    tagged_volume: tuple[str, str],  # noqa: F811
    local_target: dict[str, Any],
    s3_target: dict[str, Any],
) -> None:
    _, tag = tagged_volume
    source = SnapshotSource(
        kind="ebs", conn_id=s3_conn_id, region=PRIMARY, copy_to=(SECONDARY,), volume_tags={"app": tag}, waiting=FAST
    )
    targets = [local_target, s3_target]
    pinned, locked, old, *newest = [_take(source, targets, n, "compliance" if n == 1 else "standard") for n in range(5)]
    for _, catalog in target_catalogs(SPEC, targets):
        write_pin(catalog, Pin(backup_id=pinned.backup_id, component=COMPONENT, reason="audit", pinned_by="t",
                               pinned_at=datetime.now(UTC)))  # fmt: skip
    later = datetime.now(UTC) + timedelta(days=3)

    # Dry run: lists the snapshot ids per region of what it would delete, deletes nothing.
    dry = expire_component(SPEC, COMPONENT, targets, RULES, later, dry_run=True, snapshot_conn_id=s3_conn_id)
    for target in dry.to_dict()["targets"]:
        assert [(r["backup_id"], r["snapshots"]) for r in target["delete"]] == [(old.backup_id, _ids(old))]
        kept = {r["backup_id"]: r for r in target["keep"]}
        assert "audit" in kept[pinned.backup_id]["reason"] and kept[locked.backup_id]["locked"]
        assert {newest[0].backup_id, newest[1].backup_id} <= set(kept)
    assert all(_ebs_exists(moto_server, r, i) for r, ids in _ids(old).items() for i in ids)

    # A region that fails (here: a copy that is not this backup's any more) is reported; the other goes.
    [secondary_copy] = _ids(old)[SECONDARY]
    ec2_secondary = client(moto_server, "ec2", SECONDARY)
    ec2_secondary.create_tags(Resources=[secondary_copy], Tags=[{"Key": "drflow:backup-id", "Value": "someone-else"}])
    first = expire_component(SPEC, COMPONENT, targets, RULES, later, dry_run=False, snapshot_conn_id=s3_conn_id)
    [deletion] = first.snapshots
    assert deletion.deleted == {PRIMARY: _ids(old)[PRIMARY]} and set(deletion.errors) == {SECONDARY}
    assert any(SECONDARY in p and "someone-else" in p for p in first.problems)
    assert not _ebs_exists(moto_server, PRIMARY, _ids(old)[PRIMARY][0])
    assert _ebs_exists(moto_server, SECONDARY, secondary_copy)
    # ... and the record stays in every target until the snapshots are all gone.
    assert all(old.backup_id in ids for ids in _recorded(targets).values())

    # Fixed, the rerun deletes the rest (the primary one counts as already gone) and then the records.
    ec2_secondary.create_tags(Resources=[secondary_copy], Tags=[{"Key": "drflow:backup-id", "Value": old.backup_id}])
    second = expire_component(SPEC, COMPONENT, targets, RULES, later, dry_run=False, snapshot_conn_id=s3_conn_id)
    [deletion] = second.snapshots
    assert deletion.deleted == {SECONDARY: [secondary_copy]} and deletion.already_gone == {PRIMARY: _ids(old)[PRIMARY]}
    assert second.problems == []
    assert not _ebs_exists(moto_server, SECONDARY, secondary_copy)
    want = {pinned.backup_id, locked.backup_id, *(m.backup_id for m in newest)}
    assert _recorded(targets) == {"test-local": want, "test-s3": want}
    for entry in (pinned, locked, *newest):
        assert all(_ebs_exists(moto_server, r, i) for r, ids in _ids(entry).items() for i in ids), entry.backup_id


@pytest.mark.slow
def test_snapshots_kept_by_one_target_stay_and_rds_snapshots_go_in_every_region(
    moto_server: MotoServer,
    s3_conn_id: str,
    db_instance: str,  # noqa: F811
    local_target: dict[str, Any],
    s3_target: dict[str, Any],
) -> None:
    source = SnapshotSource(
        kind="rds", conn_id=s3_conn_id, region=PRIMARY, copy_to=(SECONDARY,), db_instance=db_instance, waiting=FAST
    )
    targets = [local_target, s3_target]
    old, *newest = [_take(source, targets, n) for n in range(3)]
    later = datetime.now(UTC) + timedelta(days=3)
    # In the local target the newest record is gone, so min_copies keeps the old entry there: its
    # snapshots stay for both targets (shared), and the s3 target keeps its record, saying why.
    [(_, local)] = target_catalogs(SPEC, [local_target])
    local.discard(COMPONENT, newest[-1].backup_id)
    kept = expire_component(SPEC, COMPONENT, targets, RULES, later, dry_run=False, snapshot_conn_id=s3_conn_id)
    assert kept.snapshots == [] and kept.problems == []
    [s3_result] = [t for t in kept.targets if t.target == "test-s3"]
    [verdict] = [v for v in s3_result.verdicts if v.backup_id == old.backup_id]
    assert not verdict.delete and "kept in test-local" in verdict.reason
    assert all(old.backup_id in ids for ids in _recorded(targets).values())

    # Both targets let it go: the DB snapshot goes in both regions, then the records.
    [(_, s3)] = target_catalogs(SPEC, [s3_target])
    s3.discard(COMPONENT, newest[-1].backup_id)
    for region in (PRIMARY, SECONDARY):
        assert client(moto_server, "rds", region).describe_db_snapshots(DBSnapshotIdentifier=_ids(old)[region][0])
    fresh = _take(source, targets, 9)
    done = expire_component(SPEC, COMPONENT, targets, RULES, later, dry_run=False, snapshot_conn_id=s3_conn_id)
    [deletion] = done.snapshots
    assert deletion.backup_id == old.backup_id and deletion.deleted == _ids(old) and not deletion.errors
    for region in (PRIMARY, SECONDARY):
        with pytest.raises(ClientError, match="DBSnapshotNotFound"):
            client(moto_server, "rds", region).describe_db_snapshots(DBSnapshotIdentifier=_ids(old)[region][0])
    want = {newest[0].backup_id, fresh.backup_id}
    assert _recorded(targets) == {"test-local": want, "test-s3": want}


@pytest.mark.slow
def test_drflow_expire_lists_the_snapshot_ids_per_region_then_deletes_them(
    moto_server: MotoServer,
    s3_conn_id: str,
    tagged_volume: tuple[str, str],  # noqa: F811
    local_target: dict[str, Any],
    tmp_path: Path,
) -> None:
    _, tag = tagged_volume
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nmetadata: {{name: {SPEC}, owner: ops}}\n"
        f"regions: [{{name: {PRIMARY}, role: primary}}, {{name: {SECONDARY}}}]\n"
        f"storage: [{{name: test-local, type: local, path: {local_target['path']}, region: {PRIMARY}}}]\n"
        f"components:\n  - name: {COMPONENT}\n    criticality: high\n    rto: 2h\n    rpo: 8d\n"
        f"    snapshots: {{type: snapshot, conn_id: {s3_conn_id}, region: {PRIMARY}, copy_to: [{SECONDARY}], "
        f"ebs: {{tags: {{app: {tag}}}}}}}\n"
        "    backups: [{preset: system-image, targets: [test-local], retention: {days: 1, min_copies: 2}}]\n"
    )
    source = SnapshotSource(
        kind="ebs", conn_id=s3_conn_id, region=PRIMARY, copy_to=(SECONDARY,), volume_tags={"app": tag}, waiting=FAST
    )
    old, *_ = [_take(source, [local_target], n) for n in range(3)]
    ids = _ids(old)
    base = ["expire", "--spec", str(spec), "--now", (datetime.now(UTC) + timedelta(days=3)).isoformat()]

    dry = CliRunner().invoke(app, [*base, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    listing = f"{PRIMARY} {ids[PRIMARY][0]}; {SECONDARY} {ids[SECONDARY][0]}"
    printed = " ".join(dry.output.split())  # the console wraps long lines
    assert f"would delete {old.backup_id}: older than 1 days" in printed and f"(snapshots: {listing})" in printed
    assert all(_ebs_exists(moto_server, r, i[0]) for r, i in ids.items())

    done = CliRunner().invoke(app, base)
    assert done.exit_code == 0, done.output
    assert f"deleted {old.backup_id}" in done.output
    assert not any(_ebs_exists(moto_server, r, i[0]) for r, i in ids.items())
    assert old.backup_id not in _recorded([local_target])["test-local"]

    # The retention DAG's task carries the snapshot source's connection in its typed contract.
    [plan] = [p for p in compile_specs([spec]) if p.kind == "retention"]
    [task] = plan.tasks
    assert RetentionRun.from_params(task.params["retention"]).snapshot_conn_id == s3_conn_id
