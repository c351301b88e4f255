"""The snapshot backup and drill DAGs, compiled from a spec and run through Airflow (dag.test()) against moto."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest

from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY
from drflow.store.factory import target_catalogs
from tests.fixtures.airflow import dagbag
from tests.fixtures.s3 import MotoServer

pytestmark = pytest.mark.slow

SPEC = """\
version: 1
metadata: {{name: {name}, owner: test-team}}
defaults: {{retries: 0}}
regions: [{{name: us-east-1, role: primary}}, {{name: eu-west-1}}]
storage:
  - {{name: local-store, type: local, path: {root}/store}}
components:
  - name: analytics
    criticality: high
    rto: 2h
    rpo: 8d
    snapshots:
      conn_id: {conn_id}
      region: us-east-1
      ebs: {{tags: {{drflow-test: {tag}}}}}
      poll_interval: 1s
      wait_timeout: 1m
    backups:
      - {{preset: system-image, targets: [local-store], retention: {{days: 35}}}}
    drills:
      - {{name: volume, type: restore, schedule: "@weekly"}}
"""


def test_snapshot_backup_and_drill_dags_run_through_airflow(
    airflow_db: Path, specs_dir_env: Path, s3_conn_id: str, moto_server: MotoServer, tmp_path: Path
) -> None:
    name, tag = f"images-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    east = boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=moto_server.endpoint_url,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )
    volume = east.create_volume(
        AvailabilityZone="us-east-1a",
        Size=4,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "drflow-test", "Value": tag}]}],
    )["VolumeId"]
    (specs_dir_env / f"{name}.yaml").write_text(SPEC.format(name=name, root=tmp_path, conn_id=s3_conn_id, tag=tag))
    try:
        bag = dagbag()
        assert bag.import_errors == {}
        assert f"dr.{name}.analytics.backup.weekly-snapshot" in bag.dags, sorted(bag.dag_ids)
        backup = bag.dags[f"dr.{name}.analytics.backup.weekly-snapshot"]
        drill = bag.dags[f"dr.{name}.analytics.drill.volume"]
        assert [t.task_id for t in backup.tasks] == ["take_backup", "verify_backup"]
        assert backup.test().state == "success"
        assert drill.test().state == "success"
    finally:
        east.delete_volume(VolumeId=volume)

    [(_, catalog)] = target_catalogs(name, [{"name": "local-store", "type": "local", "path": str(tmp_path / "store")}])
    [manifest] = catalog.list_backups("analytics")
    [snap] = manifest.extra["snapshots"]
    assert snap["source"] == volume and set(snap["regions"]) == {"us-east-1", "eu-west-1"}
    [report] = catalog.read_reports("analytics", "drill")
    assert report["passed"] and report["region"] == "eu-west-1" and report["backup_id"] == manifest.backup_id
    assert report["drill"] == "volume" and report["started_at"] <= report["finished_at"]
