"""The region-failover plan end to end: real Airflow (REST API, scheduler, dag-processor, triggerer), a real
primary and streaming replica, Route53 in moto. Two users: alice triggers, bob (the only approver) answers.

The refusal test runs first and must leave everything as it was; the approval test then fails over.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, aws_conn_uri_json
from drflow.engines.postgres.cluster import LocalCluster, create_replica, free_port
from drflow.hosts import LocalHost
from drflow.store.catalog import Catalog
from drflow.store.local import LocalStore
from tests.e2e.airflow_stack import AirflowStack, airflow_stack
from tests.fixtures.pg import PG_BIN_DIR, airflow_conn_json, pg_workdir_context, query_value, running_cluster
from tests.fixtures.s3 import MotoServer

pytestmark = pytest.mark.slow

DAG_ID = "dr.e2e.plan.region-failover"
PROBE_ID = "dr.e2e.plan.deadline-probe"
RECORD_NAME = "db.e2e-marketplace.internal."
OLD_VALUE = "primary.us-east-1.e2e-marketplace.internal."
NEW_VALUE = "replica-1.us-west-2.e2e-marketplace.internal."
ROWS = 1000

SPEC = """\
version: 1
metadata: {{name: e2e, owner: test-team}}
defaults: {{retries: 0}}
regions:
  - {{name: us-east-1, role: primary}}
  - {{name: us-west-2}}
storage:
  - {{name: local-store, type: local, path: {store}, region: us-east-1}}
reports:
  rpo_compliance: {{enabled: false}}
notifications:
  - {{name: e2e-hook, type: webhook, conn_id: e2e_hook}}
components:
  - name: user-database
    criticality: critical
    rto: 30m
    rpo: 5m
    datastore:
      type: postgres
      database: users
      bin_dir: {bin_dir}
      primary: {{conn_id: e2e_pg_primary, region: us-east-1, data_directory: {primary_dir}}}
      replicas:
        - {{name: replica-1, conn_id: e2e_pg_replica, region: us-west-2, data_directory: {replica_dir},
           slot: test_replica}}
      replication: {{enabled: false}}
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "0 2 * * *", targets: [local-store],
         retention: {{days: 7}}}}
recovery_plans:
  - name: region-failover
    scenario: infrastructure-failure
    status: approved
    components: [user-database]
    primary_region: us-east-1
    recovery_region: us-west-2
    approval: {{approvers: [bob], four_eyes: true, timeout: 10m}}
    notify: [e2e-hook]
    steps:
      - {{name: gate-lag, action: gate_lag, component: user-database, node: replica-1, timeout: 1m}}
      - {{name: fence-primary, action: fence, component: user-database, node: primary, timeout: 1m}}
      - {{name: promote-replica, action: promote, component: user-database, node: replica-1, timeout: 2m}}
      - name: switch-dns
        action: switch_dns
        conn_id: e2e_aws
        hosted_zone_id: {zone_id}
        record_name: {record_name}
        value: {new_value}
        timeout: 1m
      - name: validate-new-primary
        action: validate_sql
        component: user-database
        node: replica-1
        verification: true
        checks:
          - {{name: writable, query: select not pg_is_in_recovery(), expected: "true"}}
          - {{name: accounts, query: select count(*) from accounts, expected: "{rows}"}}
      - name: tell-customers
        type: manual
        assignees: [alice]
        instructions: Post on the status page that the marketplace runs from us-west-2.
  # Its RTO passes while the declaration waits: the deadline alert must reach the webhook.
  - name: deadline-probe
    scenario: human-error
    status: approved
    components: [user-database]
    rto: 1s
    approval: {{approvers: [bob], timeout: 10m}}
    notify: [e2e-hook]
    steps:
      - {{name: nothing, type: manual, assignees: [alice], instructions: Nothing to do.}}
"""


def pg_conn(cluster: LocalCluster) -> str:
    return airflow_conn_json(cluster)


def query(cluster: LocalCluster, sql: str) -> Any:
    return query_value(cluster, sql, "users")


def route53(moto: MotoServer) -> Any:
    return boto3.client(
        "route53",
        endpoint_url=moto.endpoint_url,
        region_name=moto.region,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )


def record_value(moto: MotoServer, zone_id: str) -> str:
    page = route53(moto).list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=RECORD_NAME, StartRecordType="CNAME", MaxItems="1"
    )
    [record] = [r for r in page["ResourceRecordSets"] if r["Name"] == RECORD_NAME]
    return str(record["ResourceRecords"][0]["Value"])


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[LocalCluster, LocalCluster]]:
    host = LocalHost()
    with pg_workdir_context(host) as workdir, running_cluster(workdir, "primary", host) as primary:
        with psycopg.connect(**primary.conninfo().libpq_kwargs(), autocommit=True) as conn:
            conn.execute("create database users")
        with psycopg.connect(**primary.conninfo("users").libpq_kwargs(), autocommit=True) as conn:
            conn.execute("create table accounts (id bigint primary key, email text not null)")
            conn.execute(f"insert into accounts select n, 'u' || n || '@example.com' from generate_series(1, {ROWS}) n")
        replica = create_replica(primary, workdir / "replica", free_port(), "test_replica", socket_dir=workdir / "run")
        try:
            yield primary, replica
        finally:
            replica.stop("immediate")


@pytest.fixture(scope="module")
def zone_id(moto_server: MotoServer) -> str:
    client = route53(moto_server)
    zone = client.create_hosted_zone(Name="e2e-marketplace.internal.", CallerReference=uuid.uuid4().hex)
    zone_id = str(zone["HostedZone"]["Id"]).rsplit("/", 1)[-1]
    client.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": RECORD_NAME,
                        "Type": "CNAME",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": OLD_VALUE}],
                    },
                }
            ]
        },
    )
    return zone_id


@pytest.fixture(scope="module")
def store_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="drflow-e2e-store-") as path:
        yield Path(path)


class Webhook:
    """A local HTTP receiver for the plans' webhook channel: every JSON body it was sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, run_id: str) -> list[str]:
        return [body["event"] for body in self.received if body.get("run_id") == run_id]

    def wait_for(self, run_id: str, event: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if event in self.events(run_id):
                return
            time.sleep(0.3)
        raise AssertionError(f"no {event} notification for {run_id} within {timeout}s; got {self.received}")


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


@pytest.fixture(scope="module")
def stack(
    clusters: tuple[LocalCluster, LocalCluster],
    moto_server: MotoServer,
    zone_id: str,
    store_dir: Path,
    webhook: Webhook,
) -> Iterator[AirflowStack]:
    primary, replica = clusters
    with tempfile.TemporaryDirectory(prefix="drflow-e2e-specs-") as specs:
        (Path(specs) / "e2e.yaml").write_text(
            SPEC.format(
                store=store_dir,
                bin_dir=PG_BIN_DIR,
                primary_dir=primary.data_dir,
                replica_dir=replica.data_dir,
                zone_id=zone_id,
                record_name=RECORD_NAME,
                new_value=NEW_VALUE,
                rows=ROWS,
            )
        )
        connections = {
            "AIRFLOW_CONN_E2E_PG_PRIMARY": pg_conn(primary),
            "AIRFLOW_CONN_E2E_PG_REPLICA": pg_conn(replica),
            "AIRFLOW_CONN_E2E_AWS": aws_conn_uri_json(moto_server.endpoint_url, moto_server.region),
            "AIRFLOW_CONN_E2E_HOOK": json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "port": webhook.port, "schema": "http"}
            ),
        }
        with airflow_stack(Path(specs), connections) as running:
            alice = running.client("alice")
            for dag_id in (DAG_ID, PROBE_ID):
                alice.wait_for_dag(dag_id)
                alice.unpause(dag_id)
            yield running


@pytest.fixture(scope="module")
def probe_run_id(stack: AirflowStack) -> str:
    """A run of the 1-second-RTO plan, started early so its deadline passes while other tests run."""
    return stack.client("alice").trigger(PROBE_ID, {"reason": "e2e: deadline probe"})


def recovery_records(store_dir: Path) -> list[dict[str, Any]]:
    return Catalog(LocalStore(store_dir), "e2e").read_reports("user-database", "recovery")


def test_a_refused_declaration_changes_nothing(
    stack: AirflowStack,
    probe_run_id: str,
    clusters: tuple[LocalCluster, LocalCluster],
    moto_server: MotoServer,
    zone_id: str,
    store_dir: Path,
) -> None:
    primary, replica = clusters
    alice, bob = stack.client("alice"), stack.client("bob")
    run_id = alice.trigger(DAG_ID, {"reason": "e2e: a false alarm"}, note="refusal path")

    assert bob.answer(DAG_ID, run_id, "declare", "Reject").status_code == 200
    run = alice.wait_run(DAG_ID, run_id)

    assert run["state"] == "success"  # a refusal ends the run cleanly
    states = {task: ti["state"] for task, ti in alice.task_instances(DAG_ID, run_id).items()}
    steps = ["gate-lag", "fence-primary", "promote-replica", "switch-dns", "validate-new-primary", "tell-customers"]
    assert {task: states[task] for task in steps} == dict.fromkeys(steps, "skipped")
    assert (states["assess"], states["declare"], states["record"]) == ("success", "success", "success")
    assert query(primary, "select pg_is_in_recovery()") is False
    assert query(primary, "show default_transaction_read_only") == "off"
    assert query(primary, "insert into accounts values (-1, 'still@writable') returning id") == -1
    query(primary, "delete from accounts where id = -1")
    assert query(replica, "select pg_is_in_recovery()") is True
    assert record_value(moto_server, zone_id) == OLD_VALUE
    [record] = [r for r in recovery_records(store_dir) if r["run_id"] == run_id]
    assert record["outcome"] == "refused"
    assert record["triggered_by"]["user"] == "alice"
    assert [(a["by"], a["decision"]) for a in record["approvals"]] == [("bob", "refused")]


def test_bob_approves_alices_failover_and_the_replica_takes_over(
    stack: AirflowStack,
    webhook: Webhook,
    clusters: tuple[LocalCluster, LocalCluster],
    moto_server: MotoServer,
    zone_id: str,
    store_dir: Path,
) -> None:
    primary, replica = clusters
    alice, bob = stack.client("alice"), stack.client("bob")
    run_id = alice.trigger(DAG_ID, {"reason": "e2e: us-east-1 is unreachable"}, note="approval path")

    # Four eyes: alice triggered, so the API does not let her answer the declaration.
    assert alice.answer(DAG_ID, run_id, "declare", "Approve").status_code == 403
    # The RTO deadline runs from the moment the run was queued (pruned once the run succeeds).
    [deadline] = alice.get(f"/ui/dags/{DAG_ID}/dagRuns/{run_id}/deadlines")["deadlines"]
    queued_at = datetime.fromisoformat(alice.run(DAG_ID, run_id)["queued_at"])
    assert datetime.fromisoformat(deadline["deadline_time"]) - queued_at == timedelta(minutes=30)
    assert deadline["alert_name"] == "RTO of plan region-failover" and deadline["missed"] is False
    declaration = bob.hitl(DAG_ID, run_id, "declare")
    assert [u["name"] for u in declaration["assigned_users"]] == ["bob"]
    assert "e2e: us-east-1 is unreachable" in declaration["body"]
    assert bob.answer(DAG_ID, run_id, "declare", "Approve").status_code == 200

    answered = alice.answer(DAG_ID, run_id, "tell-customers", "Done", {"comment": "status page updated"})
    assert answered.status_code == 200, answered.text
    run = alice.wait_run(DAG_ID, run_id)
    states = {task: ti["state"] for task, ti in alice.task_instances(DAG_ID, run_id).items()}
    assert run["state"] == "success", states
    assert set(states.values()) == {"success"}

    assert query(replica, "select pg_is_in_recovery()") is False
    assert query(replica, "insert into accounts values (-2, 'new@primary') returning id") == -2
    assert query(primary, "show default_transaction_read_only") == "on"  # fenced
    assert record_value(moto_server, zone_id) == NEW_VALUE
    validation = alice.xcom(DAG_ID, run_id, "validate-new-primary")
    assert validation["passed"] is True

    [record] = [r for r in recovery_records(store_dir) if r["run_id"] == run_id]
    if os.environ.get("DRFLOW_E2E_RECORD_DIR"):  # benchmarks/failover.py --airflow reads it
        (Path(os.environ["DRFLOW_E2E_RECORD_DIR"]) / "record.json").write_text(json.dumps(record))
    assert record["outcome"] == "recovered"
    assert record["triggered_by"]["user"] == "alice" and record["reason"] == "e2e: us-east-1 is unreachable"
    decisions = {(a["task_id"], a["by"], a["decision"]) for a in record["approvals"]}
    assert ("declare", "bob", "approved") in decisions
    # The record task leaves the post-incident report beside the record; data lost = the lag at promotion.
    assert record["data_loss"]["rpo_met"] is True and record["data_loss"]["sources"][0]["step"] == "promote-replica"
    reports = Catalog(LocalStore(store_dir), "e2e").read_reports("user-database", "incident")
    [incident] = [r["text"] for r in reports if r["run_id"] == run_id]
    assert "`declare` approved by bob" in incident and "“status page updated”" in incident
    assert "| RPO (data lost) |" in incident and "triggered by alice via rest_api" in incident

    webhook.wait_for(run_id, "completion")
    events = webhook.events(run_id)
    assert events.count("activation") == 1 and events.count("approval-needed") == 2  # declare, tell-customers
    assert "step-failed" not in events and "deadline-missed" not in events


def test_a_run_past_its_rto_notifies_deadline_missed(stack: AirflowStack, probe_run_id: str, webhook: Webhook) -> None:
    webhook.wait_for(probe_run_id, "deadline-missed")
    [body] = [b for b in webhook.received if b["event"] == "deadline-missed"]
    assert body["plan"] == "deadline-probe" and body["dag_id"] == PROBE_ID
    bob = stack.client("bob")
    assert bob.answer(PROBE_ID, probe_run_id, "declare", "Reject").status_code == 200
    assert bob.wait_run(PROBE_ID, probe_run_id)["state"] == "success"
