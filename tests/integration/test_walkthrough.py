"""A walkthrough against real servers: a PostgreSQL primary + streaming replica, Route53 and S3 in moto.

Through `drflow walkthrough` (no Airflow): the region-failover plan walks through ready and its result
lands in every storage target while a missing bucket fails on its own; a restore step is not ready until
a backup exists; with the replica stopped the walkthrough names the steps that would fail and why. Nothing
is changed on the servers. The walkthrough DAG itself runs in tests/e2e/test_exercises.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from typer.testing import CliRunner

from drflow.cli.main import app
from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY
from drflow.engines.postgres.cluster import LocalCluster, create_replica, free_port
from drflow.hosts import LocalHost
from drflow.jobs.backup import FullBackupRequest, take_full_backup
from drflow.store.factory import target_catalogs
from tests.fixtures.pg import PG_BIN_DIR, airflow_conn_json, create_database, pg_workdir_context, running_cluster
from tests.fixtures.s3 import MotoServer

pytestmark = pytest.mark.slow

SPEC = """\
version: 1
metadata: {{name: walk, owner: test-team}}
regions: [{{name: us-east-1, role: primary}}, {{name: us-west-2}}]
storage:
  - {{name: local, type: local, path: {store}, region: us-east-1}}
  - {{name: s3, type: s3, bucket: {bucket}, conn_id: {s3_conn}, region: us-east-1, prefix: walk}}
{extra_storage}
notifications:
  - {{name: ops-hook, type: webhook, conn_id: walk_hook}}
defaults: {{audit_conn_id: walk_audit, retries: 0}}
components:
  - name: orders
    criticality: critical
    rto: 30m
    rpo: 5m
    datastore:
      type: postgres
      database: orders
      bin_dir: {bin_dir}
      primary: {{conn_id: walk_primary, region: us-east-1}}
      replicas: [{{name: replica-1, conn_id: walk_replica, region: us-west-2}}]
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "0 2 * * *", targets: [local],
         retention: {{days: 7}}}}
recovery_plans:
  - name: region-failover
    scenario: infrastructure-failure
    status: approved
    components: [orders]
    approval: {{approvers: [alice, bob], four_eyes: true}}
    notify: [ops-hook]
    steps:
      - {{name: gate-lag, action: gate_lag, component: orders, node: replica-1}}
      - {{name: fence-primary, action: fence, component: orders}}
      - {{name: promote-replica, action: promote, component: orders, node: replica-1}}
      - {{name: switch-dns, action: switch_dns, conn_id: {s3_conn}, hosted_zone_id: {zone}, record_name: db.{zone_name},
         record_type: CNAME, value: west.{zone_name}}}
      - name: validate-new-primary
        action: validate_sql
        component: orders
        node: replica-1
        verification: true
        checks: [{{name: writable, query: select not pg_is_in_recovery(), expected: "true"}}]
      - {{name: flush-cdn, action: run_command, command: [flush-cdn-cache.sh]}}
      - {{name: tell-customers, type: manual, assignees: [alice], instructions: Post it.}}
  - name: corruption
    scenario: data-corruption
    status: approved
    components: [orders]
    approval: {{approvers: [alice, bob]}}
    steps:
      - {{name: restore-clean, action: restore, component: orders, before_incident: true}}
      - {{name: validate-restored, action: validate_sql, component: orders, node: restored,
         checks: [{{name: rows, query: select count(*) from accounts, expected: "1"}}]}}
exercises:
  - {{name: region-walkthrough, type: walkthrough, plan: region-failover}}
"""
REGION_STEPS = {
    "assess",
    "declare",
    "gate-lag",
    "fence-primary",
    "promote-replica",
    "switch-dns",
    "validate-new-primary",
    "flush-cdn",
    "tell-customers",
}


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[LocalCluster, LocalCluster]]:
    host = LocalHost()
    with pg_workdir_context(host) as workdir, running_cluster(workdir, "primary", host) as primary:
        create_database(
            primary, "orders", "create table accounts (id int primary key)", "insert into accounts values (1)"
        )
        replica = create_replica(primary, workdir / "replica", free_port(), "walk_replica", socket_dir=workdir / "run")
        try:
            yield primary, replica
        finally:
            replica.stop("immediate")


@pytest.fixture(scope="module")
def zone(moto_server: MotoServer) -> Iterator[tuple[str, str]]:
    route53 = boto3.client(
        "route53",
        endpoint_url=moto_server.endpoint_url,
        region_name=moto_server.region,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )
    name = f"w{uuid.uuid4().hex[:8]}.internal"
    zone_id = route53.create_hosted_zone(Name=f"{name}.", CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    record = {"Name": f"db.{name}.", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": f"east.{name}"}]}
    change = {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]}
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=change)
    yield zone_id.rsplit("/", 1)[-1], name
    change["Changes"][0]["Action"] = "DELETE"
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=change)
    route53.delete_hosted_zone(Id=zone_id)


@pytest.fixture
def world(
    pair: tuple[LocalCluster, LocalCluster],
    zone: tuple[str, str],
    s3_target: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    primary, replica = pair
    monkeypatch.setenv("AIRFLOW_CONN_WALK_PRIMARY", airflow_conn_json(primary))
    monkeypatch.setenv("AIRFLOW_CONN_WALK_REPLICA", airflow_conn_json(replica))
    # Looked up, never called: a walkthrough must not page anyone or read the audit trail.
    monkeypatch.setenv("AIRFLOW_CONN_WALK_HOOK", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9/hook"}))
    monkeypatch.setenv("AIRFLOW_CONN_WALK_AUDIT", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9"}))
    fields = {
        "store": tmp_path / "store",
        "bucket": s3_target["bucket"],
        "s3_conn": s3_target["conn_id"],
        "bin_dir": PG_BIN_DIR,
        "zone": zone[0],
        "zone_name": zone[1],
    }
    return {"primary": primary, "replica": replica, "fields": fields, "s3": s3_target, "tmp": tmp_path}


def write_spec(world: dict[str, Any], path: Path, extra_storage: str = "") -> Path:
    path.write_text(SPEC.format(**world["fields"], extra_storage=extra_storage))
    return path


def walk(spec: Path, plan: str, *more: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["walkthrough", "--spec", str(spec), "--plan", plan, "--json", *more])
    text = result.stdout
    return result.exit_code, json.loads(text[text.index("{") : text.rindex("}") + 1])


def server_state(cluster: LocalCluster) -> tuple[Any, ...]:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as db:
        row = db.execute(
            "select pg_is_in_recovery(), current_setting('default_transaction_read_only'), "
            "(select count(*) from pg_stat_activity where application_name = 'drflow-walkthrough')"
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_the_region_failover_walks_through_ready_and_its_result_lands_in_every_target(world: dict[str, Any]) -> None:
    conn = world["s3"]["conn_id"]
    missing = f"  - {{name: s3-gone, type: s3, bucket: walk-no-such-bucket, conn_id: {conn}, region: us-east-1}}"
    spec = write_spec(world, world["tmp"] / "walk.yaml", missing)
    before = (server_state(world["primary"]), server_state(world["replica"]))

    code, result = walk(spec, "region-failover", "--record", "region-walkthrough")

    findings = {f["step"]: f for f in result["findings"]}
    assert set(findings) == REGION_STEPS
    assert all(f["ok"] for f in findings.values()), [f for f in findings.values() if not f["ok"]]
    assert "0.0s behind" in findings["gate-lag"]["detail"]
    assert "fenced by an earlier step" in findings["promote-replica"]["detail"]
    assert f"db.{world['fields']['zone_name']}" in findings["switch-dns"]["detail"]
    assert "unchanged" in findings["flush-cdn"]["detail"]
    assert result["outcome"] == "passed" and result["type"] == "walkthrough" and result["run_id"] == "cli"
    # Every target on its own: the missing bucket fails, the local directory and the S3 bucket hold the result.
    assert code == 1 and set(result["stored"]["failed"]) == {"s3-gone"}
    assert set(result["stored"]["written"]) == {"local", "s3"}
    targets = [
        {"name": "local", "type": "local", "path": str(world["fields"]["store"])},
        {**world["s3"], "prefix": "walk"},
    ]
    for _, catalog in target_catalogs("walk", targets):
        [stored] = catalog.read_reports("orders", "exercise")
        assert stored["exercise"] == "region-walkthrough" and stored["outcome"] == "passed"
        assert stored["objectives"] == {"rto_s": 1800, "rpo_s": 300}
    # Check only: both servers are as they were (roles, no read-only fence), no check session is left.
    after = (server_state(world["primary"]), server_state(world["replica"]))
    assert after == before == ((False, "off", 0), (True, "off", 0))


def test_a_restore_step_is_ready_only_once_a_backup_exists(world: dict[str, Any]) -> None:
    spec = write_spec(world, world["tmp"] / "walk.yaml")
    code, result = walk(spec, "corruption")
    restore = next(f for f in result["findings"] if f["step"] == "restore-clean")
    assert code == 1 and not restore["ok"]
    assert "nothing to restore" in restore["detail"] and "run its backup DAG" in restore["detail"]

    take_full_backup(
        FullBackupRequest(
            spec_name="walk",
            component="orders",
            policy="daily-full",
            backup_id="20261201T000000Z-daily-full-abcdef",
            conn=world["primary"].conninfo("orders"),
            bin_dir=PG_BIN_DIR,
            targets=[{"name": "local", "type": "local", "path": str(world["fields"]["store"])}],
            compression="zstd",
            retention_days=7,
            retention_policy="standard",
            validation=[],
        )
    )
    code, result = walk(spec, "corruption")
    assert code == 0, result
    restore = next(f for f in result["findings"] if f["step"] == "restore-clean")
    assert "20261201T000000Z-daily-full-abcdef in local" in restore["detail"]


def test_with_the_replica_stopped_the_walkthrough_names_the_steps_that_would_fail_and_why(
    world: dict[str, Any],
) -> None:
    spec = write_spec(world, world["tmp"] / "walk.yaml")
    world["replica"].stop("immediate")  # the module's last test: the pair is not used after it

    code, result = walk(spec, "region-failover")

    failing = {f["step"]: f["detail"] for f in result["findings"] if not f["ok"]}
    assert code == 1 and set(failing) == {"gate-lag", "promote-replica", "validate-new-primary"}
    assert "replica-1" in failing["gate-lag"] and "is unreachable" in failing["gate-lag"]
    assert "the lag gate would refuse" in failing["gate-lag"]
    assert "is unreachable" in failing["promote-replica"] and "is unreachable" in failing["validate-new-primary"]
    assess = next(f["detail"] for f in result["findings"] if f["step"] == "assess")  # it reports, never fails
    assert "primary reachable (primary)" in assess and "replica-1 will be reported" in assess
    assert server_state(world["primary"]) == (False, "off", 0)
