"""A simulation of the region-failover plan on isolated copies: a real primary and streaming replica, a base backup
and archived WAL in two storage targets (moto S3 over HTTP and a local directory), Route53 in moto.

It must measure the recovery time and the data loss on the copies, write the result into every target for every
affected component, and leave production as it was: the same roles, the primary writable, the replica in
recovery on the same timeline, the DNS record's value, no test record, no scratch server left.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from drflow.cli import app
from drflow.devtools.sandbox.dns import route53 as sandbox_route53
from drflow.devtools.sandbox.s3 import create_buckets
from drflow.engines.postgres.cluster import LocalCluster, create_replica, free_port
from drflow.hosts import Host
from drflow.jobs.backup import FullBackupRequest, take_full_backup
from drflow.jobs.wal import WalArchiveRequest, archive_wal
from drflow.store.factory import target_catalogs
from drflow.workdir import work_root
from tests.fixtures.airflow import dagbag
from tests.fixtures.pg import airflow_conn_json, create_database, pg_workdir_context, running_cluster
from tests.fixtures.s3 import MotoServer

pytestmark = pytest.mark.slow

SPEC_NAME = "sim"
ROWS = 1000
LATER_ROWS = 25
RECORD = "db.sim-marketplace.internal."
OLD_VALUE = "primary.us-east-1.sim-marketplace.internal."
NEW_VALUE = "replica-1.us-west-2.sim-marketplace.internal."
CONNS = {"primary": "sim_pg_primary", "replica": "sim_pg_replica", "replication": "sim_pg_replication"}

SPEC = """\
version: 1
metadata: {{name: sim, owner: test-team}}
defaults: {{retries: 0}}
regions:
  - {{name: us-east-1, role: primary}}
  - {{name: us-west-2}}
storage:
  - {{name: s3-store, type: s3, bucket: {bucket}, conn_id: {s3_conn}, region: us-east-1, prefix: sim}}
  - {{name: local-store, type: local, path: {store}}}
reports:
  rpo_compliance: {{enabled: false}}
components:
  - name: user-database
    criticality: critical
    rto: 30m
    rpo: 5m
    datastore:
      type: postgres
      database: users
      bin_dir: {bin_dir}
      primary: {{conn_id: sim_pg_primary, region: us-east-1}}
      replicas:
        - {{name: replica-1, conn_id: sim_pg_replica, region: us-west-2, slot: sim_replica,
           replication_conn_id: sim_pg_replication}}
      replication: {{enabled: false}}
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "0 2 * * *",
         targets: [s3-store, local-store], retention: {{days: 7}}}}
      - {{name: wal, type: incremental, method: pg_receivewal, schedule: "*/4 * * * *",
         targets: [s3-store, local-store], retention: {{days: 7}}}}
  - name: billing
    criticality: high
    rto: 1h
    rpo: 15m
    datastore:
      type: postgres
      database: billing
      bin_dir: {bin_dir}
      primary: {{conn_id: sim_pg_primary, region: us-east-1}}
      replication: {{enabled: false}}
recovery_plans:
  - name: region-failover
    scenario: infrastructure-failure
    status: approved
    components: [user-database, billing]
    approval: {{approvers: [oncall, admin], four_eyes: true, timeout: 15m}}
    steps:
      - {{name: gate-lag, action: gate_lag, component: user-database, node: replica-1, timeout: 2m}}
      - {{name: fence-primary, action: fence, component: user-database, node: primary, timeout: 2m}}
      - {{name: promote-replica, action: promote, component: user-database, node: replica-1, timeout: 5m}}
      - name: switch-dns
        action: switch_dns
        conn_id: {s3_conn}
        hosted_zone_id: {zone_id}
        record_name: {record}
        value: {new_value}
        timeout: 5m
      - name: validate-new-primary
        action: validate_sql
        component: user-database
        node: replica-1
        verification: true
        checks:
          - {{name: writable, query: select not pg_is_in_recovery(), expected: "true"}}
          - {{name: accounts-archived, query: select count(*) from accounts, expected: "{rows}"}}
      - name: tell-customers
        type: manual
        assignees: [oncall]
        instructions: Post on the status page that the marketplace runs from us-west-2.
        timeout: 1h
      - {{name: rebuild-old-primary, action: rebuild_replica, component: user-database, node: primary,
         source: replica-1, depends_on: [validate-new-primary]}}
  - name: data-corruption
    scenario: data-corruption
    status: approved
    components: [user-database]
    approval: {{approvers: [oncall, admin]}}
    steps:
      - {{name: restore-to-point, action: restore, component: user-database, target: local-store, point_in_time: true}}
      - name: validate-restored
        action: validate_sql
        component: user-database
        node: restored
        verification: true
        checks:
          - {{name: accounts-archived, query: select count(*) from accounts, expected: "{rows}"}}
      - {{name: repoint-app, type: manual, assignees: [oncall], instructions: Point the application at the copy.}}
"""


@dataclass
class Sandbox:
    primary: LocalCluster
    replica: LocalCluster
    spec_path: Path
    targets: list[dict[str, Any]]
    route53: Any
    zone_id: str
    archived_at: datetime


def _production(sandbox: Sandbox) -> dict[str, Any]:
    """What must not change: roles, timelines, the DNS record, the test record's absence."""
    facts: dict[str, Any] = {}
    for name, cluster in (("primary", sandbox.primary), ("replica", sandbox.replica)):
        with psycopg.connect(**cluster.conninfo("users").libpq_kwargs(), autocommit=True) as db:
            row = db.execute(
                "select pg_is_in_recovery(), current_setting('default_transaction_read_only'),"
                " (select timeline_id from pg_control_checkpoint())"
            ).fetchone()
        facts[name] = row
    records = sandbox.route53.list_resource_record_sets(HostedZoneId=sandbox.zone_id)["ResourceRecordSets"]
    facts["dns"] = sorted(
        (r["Name"], r["Type"], tuple(v["Value"] for v in r.get("ResourceRecords", [])))
        for r in records
        if r["Type"] not in ("NS", "SOA")
    )
    return facts


def _primary_writable(cluster: LocalCluster) -> None:
    with psycopg.connect(**cluster.conninfo("users").libpq_kwargs(), autocommit=True) as db:
        db.execute("create table if not exists probe (id int)")
        db.execute("insert into probe values (1)")


@pytest.fixture(scope="module")
def sandbox(
    pg_host: Host, pg_bin_dir: Path, moto_server: MotoServer, s3_conn_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    route53 = sandbox_route53(moto_server.endpoint_url)
    zone_id = route53.create_hosted_zone(Name="sim-marketplace.internal.", CallerReference=uuid.uuid4().hex)[
        "HostedZone"
    ]["Id"].rsplit("/", 1)[-1]
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": RECORD,
                        "Type": "CNAME",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": OLD_VALUE}],
                    },
                }
            ]
        },
    )
    bucket = f"drflow-sim-{uuid.uuid4().hex[:10]}"
    create_buckets(moto_server.endpoint_url, [bucket], moto_server.region)
    home = tmp_path_factory.mktemp("simulation")
    targets = [
        {"name": "s3-store", "type": "s3", "bucket": bucket, "conn_id": s3_conn_id, "region": "us-east-1",
         "prefix": "sim"},
        {"name": "local-store", "type": "local", "path": str(home / "store")},
    ]  # fmt: skip
    with (
        pg_workdir_context(pg_host, pg_bin_dir) as workdir,
        running_cluster(workdir, "primary", pg_host, pg_bin_dir) as primary,
    ):
        create_database(
            primary,
            "users",
            "create table accounts (id bigint primary key, email text not null)",
            f"insert into accounts select n, 'u' || n || '@example.com' from generate_series(1, {ROWS}) n",
        )
        create_database(primary, "billing", "create table invoices (id int)")
        with psycopg.connect(**primary.conninfo().libpq_kwargs(), autocommit=True) as db:
            db.execute("create role replicator with login replication")
        replica = create_replica(primary, workdir / "replica", free_port(), "sim_replica", socket_dir=workdir / "run")
        env = {f"AIRFLOW_CONN_{CONNS['primary'].upper()}": airflow_conn_json(primary)}
        env[f"AIRFLOW_CONN_{CONNS['replica'].upper()}"] = airflow_conn_json(replica)
        env[f"AIRFLOW_CONN_{CONNS['replication'].upper()}"] = json.dumps(
            {"conn_type": "postgres", "host": "127.0.0.1", "port": replica.port, "login": "replicator"}
        )
        os.environ.update(env)
        try:
            _back_up(primary, targets)
            archived_at = datetime.now(UTC)
            with psycopg.connect(**primary.conninfo("users").libpq_kwargs(), autocommit=True) as db:
                late = f"generate_series({ROWS + 1}, {ROWS + LATER_ROWS})"
                db.execute(f"insert into accounts select n, 'late' || n from {late} n")
            spec_path = home / "sim.yaml"
            spec_path.write_text(
                SPEC.format(
                    bucket=bucket,
                    s3_conn=s3_conn_id,
                    store=targets[1]["path"],
                    bin_dir=pg_bin_dir,
                    zone_id=zone_id,
                    record=RECORD,
                    new_value=NEW_VALUE,
                    rows=ROWS,
                )
            )
            yield Sandbox(primary, replica, spec_path, targets, route53, zone_id, archived_at)
        finally:
            replica.stop("immediate")
            for key in env:
                os.environ.pop(key, None)


def _back_up(primary: LocalCluster, targets: list[dict[str, Any]]) -> None:
    """A full backup, then one WAL archive run after it, into both targets."""
    conn, component = primary.conninfo("users"), "user-database"
    take_full_backup(
        FullBackupRequest(
            spec_name=SPEC_NAME, component=component, policy="daily-full", targets=targets, retention_days=7,
            backup_id="20261201T020000Z-daily-full-aaaaaa", conn=conn, bin_dir=primary.bin_dir, compression="zstd",
        )
    )  # fmt: skip
    archive_wal(
        WalArchiveRequest(
            spec_name=SPEC_NAME, component=component, policy="wal", targets=targets, retention_days=7,
            backup_id="20261201T020400Z-wal-aaaaaa", conn=conn, bin_dir=primary.bin_dir, slot="drflow_wal_sim_test",
        )
    )  # fmt: skip


def _check_untouched(
    sandbox: Sandbox, before: dict[str, Any], findings: list[dict[str, Any]], *, servers: int = 2
) -> None:
    assert _production(sandbox) == before
    assert before["primary"] == (False, "off", 1)
    assert before["replica"][0] is True and before["replica"][2] == 1
    _primary_writable(sandbox.primary)
    # Every scratch server is gone: nothing answers on the ports the findings name, no scratch directory is left.
    ports = {int(p) for f in findings for p in re.findall(r"127\.0\.0\.1:(\d+)", f["detail"])}
    assert len(ports) == servers
    for port in ports - {sandbox.primary.port, sandbox.replica.port}:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host="127.0.0.1", port=port, user="postgres", connect_timeout=2)
    assert not [p for p in work_root().iterdir() if p.name.startswith(("simulation-", ".simulation-"))]


def test_the_simulation_measures_rto_and_rpo_on_copies_and_leaves_production_untouched(sandbox: Sandbox) -> None:
    before = _production(sandbox)
    started = time.monotonic()
    result = CliRunner().invoke(
        app, ["simulate", "--spec", str(sandbox.spec_path), "--plan", "region-failover", "--json"]
    )
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    assert {k: report[k] for k in ("kind", "format_version", "spec", "exercise", "type", "plan", "outcome")} == {
        "kind": "exercise",
        "format_version": 1,
        "spec": "sim",
        "exercise": "simulation",
        "type": "simulation",
        "plan": "region-failover",
        "outcome": "passed",
    }
    assert report["components"] == ["user-database", "billing"]
    assert report["scenario"] == "infrastructure-failure" and report["participants"] == []
    assert report["dag_id"] == "dr.sim.plan.region-failover.simulation" and report["run_id"].startswith("cli__")
    assert report["objectives"] == {"rto_s": 30 * 60, "rpo_s": 5 * 60}
    started_at = datetime.fromisoformat(report["started_at"])
    assert started_at.tzinfo is not None and datetime.fromisoformat(report["finished_at"]) >= started_at
    assert 0 < report["duration_s"] <= took
    steps = [f["step"] for f in report["findings"]]
    assert steps == [
        "copies of user-database",
        "gate-lag",
        "fence-primary",
        "promote-replica",
        "switch-dns",
        "validate-new-primary",
        "tell-customers",
        "rebuild-old-primary",
        "cleanup",
        "rto",
        "rpo",
    ]
    assert all(f["ok"] for f in report["findings"]), report["findings"]
    detail = {f["step"]: f["detail"] for f in report["findings"]}
    assert "would wait for oncall" in detail["tell-customers"]
    assert f"drflow-simulation.{RECORD}" in detail["switch-dns"] and NEW_VALUE in detail["switch-dns"]
    assert "1 WAL entries" in detail["copies of user-database"]
    assert "rebuilt primary (copy)" in detail["rebuild-old-primary"] and "by rewind" in detail["rebuild-old-primary"]

    # The recovery time is the steps' wall clock (the copies are made before it starts); the data loss is the
    # copy's last transaction (the WAL archive's marker) against the primary's clock when the simulation began.
    measured = report["measured"]
    assert 0 < measured["rto_s"] < report["duration_s"]
    assert 0 < measured["rpo_s"] <= (started_at - sandbox.archived_at).total_seconds() + 5

    # In every target, once per affected component.
    for name, catalog in target_catalogs("sim", sandbox.targets):
        for component in ("user-database", "billing"):
            [stored] = [r for r in catalog.read_reports(component, "exercise") if r["run_id"] == report["run_id"]]
            assert stored == report, name

    _check_untouched(sandbox, before, report["findings"])


def test_a_restore_plan_s_simulation_dag_runs_under_airflow(
    sandbox: Sandbox, airflow_db: Path, specs_dir_env: Path
) -> None:
    (specs_dir_env / "sim.yaml").write_text(sandbox.spec_path.read_text())
    before = _production(sandbox)
    bag = dagbag()
    assert bag.import_errors == {}
    dag = bag.dags["dr.sim.plan.data-corruption.simulation"]
    run = dag.test()
    assert run.state == "success"
    for _, catalog in target_catalogs("sim", sandbox.targets):
        [stored] = [r for r in catalog.read_reports("user-database", "exercise") if r["run_id"] == run.run_id]
        assert stored["outcome"] == "passed" and stored["dag_id"] == dag.dag_id and stored["plan"] == "data-corruption"
        assert [f["step"] for f in stored["findings"]] == [
            "restore-to-point",
            "validate-restored",
            "repoint-app",
            "cleanup",
            "rto",
            "rpo",
        ]
        restore = stored["findings"][0]["detail"]
        assert "the newest archived point" in restore and "from local-store" in restore
        # The restore is a step of this plan: its time is in the recovery time.
        assert stored["measured"]["rto_s"] > 0 and stored["measured"]["rpo_s"] > 0
    _check_untouched(sandbox, before, stored["findings"], servers=1)
