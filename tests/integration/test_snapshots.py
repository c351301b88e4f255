"""EBS and RDS snapshot backups against a moto server over HTTP: taken, tagged, copied cross-region, recorded in
every storage target, restored (a volume in a given zone, an RDS instance) and drilled."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY
from drflow.engines.aws.clients import Waiting
from drflow.jobs.rpo import store_sources
from drflow.jobs.snapshot import (
    RECORD_NAME,
    SnapshotBackupRequest,
    SnapshotSource,
    restore_snapshot,
    snapshot_drill,
    take_snapshot_backup,
)
from drflow.store.factory import target_catalogs
from tests.fixtures.s3 import MotoServer
from tests.plan_inputs import rpo_component, spec_head

PRIMARY, SECONDARY = "us-east-1", "us-west-2"
FAST = Waiting(poll_s=1, timeout_s=30)


def client(server: MotoServer, service: str, region: str) -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=server.endpoint_url,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )


@pytest.fixture
def tagged_volume(moto_server: MotoServer) -> Iterator[tuple[str, str]]:
    """A volume in the primary region carrying a tag no other test uses: (volume id, tag value)."""
    ec2 = client(moto_server, "ec2", PRIMARY)
    value = f"analytics-{uuid.uuid4().hex[:8]}"
    volume = ec2.create_volume(
        AvailabilityZone=f"{PRIMARY}a",
        Size=8,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "app", "Value": value}]}],
    )
    yield volume["VolumeId"], value
    ec2.delete_volume(VolumeId=volume["VolumeId"])


@pytest.fixture
def db_instance(moto_server: MotoServer) -> Iterator[str]:
    rds = client(moto_server, "rds", PRIMARY)
    name = f"analytics-{uuid.uuid4().hex[:8]}"
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="analytics",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
    )
    yield name
    rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)


def request_for(
    source: SnapshotSource, targets: list[dict[str, Any]], backup_id: str, component: str = "analytics"
) -> SnapshotBackupRequest:
    return SnapshotBackupRequest(
        spec_name="snapshots-test",
        component=component,
        policy="weekly-snapshot",
        backup_id=backup_id,
        targets=targets,
        retention_days=35,
        source=source,
    )


@pytest.mark.slow
def test_ebs_snapshot_by_tag_copied_recorded_restored_and_drilled(
    moto_server: MotoServer,
    s3_conn_id: str,
    tagged_volume: tuple[str, str],
    local_target: dict[str, Any],
    s3_target: dict[str, Any],
) -> None:
    volume_id, tag = tagged_volume
    source = SnapshotSource(
        kind="ebs", conn_id=s3_conn_id, region=PRIMARY, copy_to=(SECONDARY,), volume_tags={"app": tag}, waiting=FAST
    )
    backup_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-weekly-snapshot"
    manifest = take_snapshot_backup(request_for(source, [local_target, s3_target], backup_id))

    # Recorded in both targets, manifest last with the record's sha256.
    for name, catalog in target_catalogs("snapshots-test", [local_target, s3_target]):
        stored = catalog.get("analytics", backup_id)
        assert stored.backup_type == "snapshot", name
        assert [o.name for o in stored.objects] == [RECORD_NAME]
    [snap] = manifest.extra["snapshots"]
    assert snap["source"] == volume_id and snap["size_gib"] == 8
    original, copy = snap["regions"][PRIMARY]["snapshot_id"], snap["regions"][SECONDARY]["snapshot_id"]
    assert original != copy and snap["regions"][SECONDARY]["state"] == "completed"

    # Tagged with drflow's metadata in both regions; the copy really is in the secondary region.
    in_secondary = client(moto_server, "ec2", SECONDARY).describe_snapshots(SnapshotIds=[copy])["Snapshots"][0]
    tags = {t["Key"]: t["Value"] for t in in_secondary["Tags"]}
    assert tags["drflow:backup-id"] == backup_id and tags["drflow:component"] == "analytics"
    assert tags["drflow:source-snapshot"] == f"{PRIMARY}/{original}"
    primary_tags = client(moto_server, "ec2", PRIMARY).describe_snapshots(SnapshotIds=[original])["Snapshots"][0]
    assert {t["Key"]: t["Value"] for t in primary_tags["Tags"]}["drflow:spec"] == "snapshots-test"

    # A retry of the same backup id takes no new snapshot and makes no new copy.
    again = take_snapshot_backup(request_for(source, [local_target, s3_target], backup_id))
    assert again.extra == manifest.extra
    owned = client(moto_server, "ec2", SECONDARY).describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:drflow:backup-id", "Values": [backup_id]}]
    )["Snapshots"]
    assert [s["SnapshotId"] for s in owned] == [copy]

    # Restore: a volume from the copy, in the zone asked for, available.
    [restored] = restore_snapshot(manifest, source, region=SECONDARY, zone=f"{SECONDARY}b")
    ec2_b = client(moto_server, "ec2", SECONDARY)
    volume = ec2_b.describe_volumes(VolumeIds=[restored.resource_id])["Volumes"][0]
    assert (volume["State"], volume["SnapshotId"], volume["AvailabilityZone"]) == (
        "available",
        copy,
        f"{SECONDARY}b",
    )
    ec2_b.delete_volume(VolumeId=restored.resource_id)

    # Drill: created, available, deleted again.
    result = snapshot_drill(manifest, source, region=SECONDARY)
    [drilled] = result["restored"]
    assert result["passed"] and drilled["state"] == "available"
    left = ec2_b.describe_volumes(Filters=[{"Name": "volume-id", "Values": [drilled["resource_id"]]}])["Volumes"]
    assert left == []

    # RPO compliance counts the snapshot's age.
    spec = {
        **spec_head("snapshots-test", [local_target]),
        "components": [
            {
                "name": "analytics",
                "criticality": "medium",
                "rto": "2h",
                "rpo": "8d",
                "snapshots": {"conn_id": s3_conn_id, "region": PRIMARY, "ebs": {"tags": {"app": tag}}},
                "backups": [{"preset": "system-image", "targets": [local_target["name"]], "retention": {"days": 35}}],
            }
        ],
    }
    component = rpo_component(spec, "analytics")
    sources, problems = store_sources("snapshots-test", component, datetime.now(UTC) + timedelta(minutes=10))
    assert problems == [] and sources[0]["backup_id"] == backup_id and 600 <= sources[0]["lag_s"] < 700


def test_rds_snapshot_copied_and_restored_to_an_available_instance(
    moto_server: MotoServer, s3_conn_id: str, db_instance: str, local_target: dict[str, Any]
) -> None:
    source = SnapshotSource(
        kind="rds", conn_id=s3_conn_id, region=PRIMARY, copy_to=(SECONDARY,), db_instance=db_instance, waiting=FAST
    )
    backup_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-weekly-snapshot"
    manifest = take_snapshot_backup(request_for(source, [local_target], backup_id, component=db_instance))
    [snap] = manifest.extra["snapshots"]
    assert snap["source"] == db_instance and snap["size_gib"] == 20
    copy = snap["regions"][SECONDARY]
    assert copy["state"] == "available" and copy["arn"].startswith(f"arn:aws:rds:{SECONDARY}:")
    rds_b = client(moto_server, "rds", SECONDARY)
    tags = {t["Key"]: t["Value"] for t in rds_b.list_tags_for_resource(ResourceName=copy["arn"])["TagList"]}
    assert tags["drflow:backup-id"] == backup_id

    [restored] = restore_snapshot(manifest, source, region=SECONDARY, name=f"{db_instance}-restored")
    instance = rds_b.describe_db_instances(DBInstanceIdentifier=restored.resource_id)["DBInstances"][0]
    assert instance["DBInstanceStatus"] == "available" and restored.state == "available"
    rds_b.delete_db_instance(DBInstanceIdentifier=restored.resource_id, SkipFinalSnapshot=True)

    with pytest.raises(Exception, match="no snapshot copy in region eu-west-1; its copies are in us-east-1, us-west-2"):
        restore_snapshot(manifest, source, region="eu-west-1")


@pytest.mark.slow
def test_cli_restores_a_snapshot_backup_into_a_zone_without_airflow(
    moto_server: MotoServer, s3_conn_id: str, tagged_volume: tuple[str, str], tmp_path: Path
) -> None:
    volume_id, _ = tagged_volume
    store = tmp_path / "store"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
metadata: {{name: snapshots-test, owner: ops}}
regions: [{{name: {PRIMARY}, role: primary}}, {{name: {SECONDARY}}}]
storage: [{{name: local, type: local, path: {store}, region: {PRIMARY}}}]
components:
  - name: analytics
    criticality: medium
    rto: 2h
    rpo: 8d
    snapshots: {{conn_id: {s3_conn_id}, region: {PRIMARY}, ebs: {{volume_id: {volume_id}}}, poll_interval: 1s}}
    backups: [{{preset: system-image, targets: [local], retention: {{days: 35}}}}]
"""
    )
    target = {"name": "local", "type": "local", "path": str(store)}
    source = SnapshotSource(
        kind="ebs", conn_id=s3_conn_id, region=PRIMARY, copy_to=(SECONDARY,), volume_id=volume_id, waiting=FAST
    )
    manifest = take_snapshot_backup(request_for(source, [target], "20261201T000000Z-weekly-snapshot"))
    copy = manifest.extra["snapshots"][0]["regions"][SECONDARY]["snapshot_id"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    done = subprocess.run(
        [sys.executable, "-m", "drflow.cli", "restore", "--spec", str(spec), "--component", "analytics"]
        + ["--to", SECONDARY, "--zone", f"{SECONDARY}c"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"from snapshot {copy}: available" in done.stdout
    new_volume = done.stdout.split(" as volume ")[1].split()[0]
    ec2_b = client(moto_server, "ec2", SECONDARY)
    volume = ec2_b.describe_volumes(VolumeIds=[new_volume])["Volumes"][0]
    assert (volume["AvailabilityZone"], volume["SnapshotId"]) == (f"{SECONDARY}c", copy)
    ec2_b.delete_volume(VolumeId=new_volume)

    refused = subprocess.run(
        [sys.executable, "-m", "drflow.cli", "restore", "--spec", str(spec), "--component", "analytics"]
        + ["--to", "eu-west-1", "--zone", "eu-west-1a"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "no snapshot copy in region eu-west-1" in refused.stderr


def test_operators_built_by_the_plan_take_and_drill_an_rds_snapshot(
    moto_server: MotoServer, s3_conn_id: str, db_instance: str, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from drflow.plan.build import build_plans
    from drflow.render.actions import operator_class
    from drflow.spec.load import load_spec_text

    store = tmp_path / "store"
    text = f"""version: 1
metadata: {{name: snapshots-ops, owner: ops}}
regions: [{{name: {PRIMARY}, role: primary}}, {{name: {SECONDARY}}}]
storage: [{{name: local, type: local, path: {store}, region: {PRIMARY}}}]
components:
  - name: reports
    criticality: high
    rto: 2h
    rpo: 8d
    snapshots: {{conn_id: {s3_conn_id}, region: {PRIMARY}, rds: {{db_instance: {db_instance}}}, poll_interval: 1s}}
    backups: [{{preset: system-image, targets: [local], retention: {{days: 35}}}}]
    drills: [{{name: instance, type: restore, schedule: "@weekly"}}]
"""
    spec = load_spec_text(text, tmp_path / "spec.yaml").spec
    plans = {p.dag_id: p for p in build_plans(spec, "spec.yaml")}
    take = plans["dr.snapshots-ops.reports.backup.weekly-snapshot"].tasks[0]
    backup = operator_class(take.action)(task_id=take.task_id, **take.params)
    dag_run = SimpleNamespace(run_id="manual__1", run_after=datetime(2026, 12, 6, 3, tzinfo=UTC))
    summary = backup.execute({"dag_run": dag_run})
    assert summary["backup_id"].startswith("20261206T030000Z-weekly-snapshot-")
    assert set(summary["snapshots"][0]["regions"]) == {PRIMARY, SECONDARY}

    [task] = plans["dr.snapshots-ops.reports.drill.instance"].tasks
    drill = operator_class(task.action)(task_id=task.task_id, **task.params)
    result = drill.execute({})
    assert result["passed"] and result["rto_met"] and result["region"] == SECONDARY
    assert client(moto_server, "rds", SECONDARY).describe_db_instances()["DBInstances"] == []
    [report] = target_catalogs("snapshots-ops", [{"name": "local", "type": "local", "path": str(store)}])[0][
        1
    ].read_reports("reports", "drill")
    assert report["backup_id"] == summary["backup_id"]
    # The drill's recovery point: the snapshot's age when the drill began, against the RPO (as a database drill).
    assert (report["drill"], report["rpo_s"], report["rpo_met"]) == ("instance", 8 * 86400, True)
    age = datetime.fromisoformat(report["started_at"]) - datetime.fromisoformat(report["backup_finished_at"])
    assert abs(report["backup_age_s"] - age.total_seconds()) < 5 and 0 <= report["backup_age_s"] < 600


def test_cli_restore_of_a_snapshot_source_into_a_directory_says_what_to_give(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
metadata: {{name: snapshots-test, owner: ops}}
regions: [{{name: {PRIMARY}, role: primary}}]
storage: [{{name: local, type: local, path: {tmp_path / "store"}, region: {PRIMARY}}}]
components:
  - name: analytics
    criticality: medium
    rto: 2h
    rpo: 8d
    snapshots: {{conn_id: aws_nowhere, region: {PRIMARY}, rds: {{db_instance: analytics-db}}}}
    backups: [{{preset: system-image, targets: [local], retention: {{days: 35}}}}]
"""
    )
    done = subprocess.run(
        [sys.executable, "-m", "drflow.cli", "restore", "--spec", str(spec), "--component", "analytics"]
        + ["--to", str(tmp_path / "restored")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    said = " ".join(done.stderr.split())  # the console wraps long lines
    assert "--to names the AWS region to create the volume or instance in, e.g. --to us-west-2" in said
    assert not (tmp_path / "restored").exists()
