"""The region-failover plan end to end: real Airflow (REST API, scheduler, dag-processor, triggerer), a real
primary and streaming replica, Route53 in moto. Two users: alice triggers, bob (the only approver) answers.

People act in a real headless browser (Debian's Chromium, `tests/e2e/browser.py`) where the issue asks for
the UI — the DAG search, the trigger form, the questions — and through the REST API elsewhere; screenshots
are kept in `test-artifacts/`. The refusal test runs first and must leave everything as it was; the
approval test then fails over.
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
from tests.e2e import airflow_pages as ui
from tests.e2e.airflow_stack import AirflowStack, airflow_stack
from tests.e2e.browser import BrowserSession, browser
from tests.fixtures.pg import PG_BIN_DIR, airflow_conn_json, pg_workdir_context, running_cluster
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
    display_name: User Database
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
      # Active from the start, like every backup DAG: a yearly slot keeps it from running during the test.
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "0 2 1 1 *", targets: [local-store],
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


def query(cluster: LocalCluster, sql: str, dbname: str = "users") -> Any:
    with psycopg.connect(**cluster.conninfo(dbname).libpq_kwargs(connect_timeout=5), autocommit=True) as conn:
        cursor = conn.execute(sql)  # test SQL, no input
        row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None


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
            for dag_id in (DAG_ID, PROBE_ID):  # plans start active: no unpausing before an incident
                alice.wait_for_dag(dag_id)
            yield running


@pytest.fixture(scope="module")
def people(stack: AirflowStack) -> Iterator[dict[str, BrowserSession]]:
    """alice and bob, each logged in to the UI in a browser context of their own."""
    with browser(stack.url) as session:
        logged_in = {}
        for user in ("alice", "bob"):
            logged_in[user] = session()
            logged_in[user].login(user, stack.passwords[user])
        yield logged_in


@pytest.fixture(scope="module")
def probe_run_id(stack: AirflowStack) -> str:
    """A run of the 1-second-RTO plan, started early so its deadline passes while other tests run."""
    return stack.client("alice").trigger(PROBE_ID, {"reason": "e2e: deadline probe"})


def recovery_records(store_dir: Path) -> list[dict[str, Any]]:
    return Catalog(LocalStore(store_dir), "e2e").read_reports("user-database", "recovery")


BACKUP_ID = "dr.e2e.user-database.backup.daily-full"


def test_searching_the_component_finds_its_dags_and_protection_is_active(
    stack: AirflowStack, people: dict[str, BrowserSession]
) -> None:
    found = ui.search_dags(people["alice"], "User Database")
    assert "User Database · backup daily-full" in found and "User Database · restore" in found
    alice = stack.client("alice")
    backup = alice.wait_for_dag(BACKUP_ID)
    assert backup["is_paused"] is False  # nobody unpaused it
    assert [t["name"] for t in backup["tags"]][:2] == ["component:user-database", "kind:backup"]
    assert alice.wait_for_dag(DAG_ID)["dag_display_name"] == "Region failover (plan)"


def test_a_refused_declaration_changes_nothing(
    stack: AirflowStack,
    people: dict[str, BrowserSession],
    probe_run_id: str,
    clusters: tuple[LocalCluster, LocalCluster],
    moto_server: MotoServer,
    zone_id: str,
    store_dir: Path,
) -> None:
    primary, replica = clusters
    alice = stack.client("alice")
    run_id = alice.trigger(DAG_ID, {"reason": "e2e: a false alarm"}, note="refusal path")

    alice.wait_awaiting_input(DAG_ID, run_id, "declare")
    ui.answer(people["bob"], DAG_ID, run_id, "declare", "Reject", comment="the probe failed, not the region")
    run = alice.wait_run(DAG_ID, run_id)

    # A refusal ends the run failed (a state the runs list filters on), its note says who refused and why.
    assert run["state"] == "failed"
    assert run["note"].startswith("REFUSED: declaration refused by bob (“the probe failed, not the region”)")
    assert "Note at trigger: refusal path" in run["note"]
    assert "Failed" in ui.run_row(people["alice"], DAG_ID, run_id)
    assert "REFUSED: declaration refused by bob" in ui.run_page(people["alice"], DAG_ID, run_id, "refused-run")
    states = {task: ti["state"] for task, ti in alice.task_instances(DAG_ID, run_id).items()}
    steps = ["gate-lag", "fence-primary", "promote-replica", "switch-dns", "validate-new-primary", "tell-customers"]
    assert {task: states[task] for task in steps} == dict.fromkeys(steps, "upstream_failed")
    assert (states["assess"], states["declare"], states["record"]) == ("success", "failed", "success")
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


def _reasked(stack: AirflowStack, run_id: str, task_id: str, parked_before: int, timeout: float = 60) -> None:
    """Until the scheduler has seen the task park again after an answer drflow did not take."""
    marker = f"dag_id={DAG_ID}, task_id={task_id}, run_id={run_id},"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _parked(stack, marker) > parked_before:
            return
        time.sleep(0.3)
    raise AssertionError(f"{task_id} was not asked again within {timeout}s\n{stack.diagnostics()}")


def _parked(stack: AirflowStack, marker: str) -> int:
    lines = stack.log("scheduler").read_text(errors="replace").splitlines()
    return sum(1 for line in lines if "TaskInstance Finished" in line and marker in line and "awaiting_input" in line)


def test_bob_approves_alices_failover_and_the_replica_takes_over(
    stack: AirflowStack,
    people: dict[str, BrowserSession],
    webhook: Webhook,
    clusters: tuple[LocalCluster, LocalCluster],
    moto_server: MotoServer,
    zone_id: str,
    store_dir: Path,
) -> None:
    primary, replica = clusters
    alice, bob = stack.client("alice"), stack.client("bob")
    # Only the reason: every other field of the form is optional.
    run_id = ui.trigger_with_form(people["alice"], DAG_ID, {"reason": "e2e: us-east-1 is unreachable"})

    # Four eyes: alice triggered, so her page says she is not an approver, and the API does not let her answer.
    alice.wait_awaiting_input(DAG_ID, run_id, "declare")
    seen_by_alice = ui.open_question(people["alice"], DAG_ID, run_id, "declare", "declare-as-alice")
    assert "alice: you triggered this run, so you are not an approver of it" in seen_by_alice
    assert alice.answer(DAG_ID, run_id, "declare", "Approve").status_code == 403
    # The RTO deadline runs from the moment the run was queued (pruned once the run succeeds).
    [deadline] = alice.get(f"/ui/dags/{DAG_ID}/dagRuns/{run_id}/deadlines")["deadlines"]
    queued_at = datetime.fromisoformat(alice.run(DAG_ID, run_id)["queued_at"])
    assert datetime.fromisoformat(deadline["deadline_time"]) - queued_at == timedelta(minutes=30)
    assert deadline["alert_name"] == "RTO of plan region-failover" and deadline["missed"] is False
    declaration = bob.hitl(DAG_ID, run_id, "declare")
    assert [u["name"] for u in declaration["assigned_users"]] == ["bob"]
    assert "e2e: us-east-1 is unreachable" in declaration["body"]
    ui.answer(people["bob"], DAG_ID, run_id, "declare", "Approve")

    # Failed needs a comment: without one the step is asked again; Done needs none.
    alice.wait_awaiting_input(DAG_ID, run_id, "tell-customers")
    marker = f"dag_id={DAG_ID}, task_id=tell-customers, run_id={run_id},"
    parked = _parked(stack, marker)
    assert alice.answer(DAG_ID, run_id, "tell-customers", "Failed").status_code == 200
    _reasked(stack, run_id, "tell-customers", parked)
    ui.answer(people["alice"], DAG_ID, run_id, "tell-customers", "Done")
    run = alice.wait_run(DAG_ID, run_id)
    states = {task: ti["state"] for task, ti in alice.task_instances(DAG_ID, run_id).items()}
    assert run["state"] == "success", states
    assert set(states.values()) == {"success"}
    assert run["note"].startswith("RECOVERED: in ") and "- `declare` approved by bob" in run["note"]
    assert "RECOVERED: in " in ui.run_page(people["alice"], DAG_ID, run_id, "recovered-run")

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
    assert "`declare` approved by bob" in incident and "`tell-customers`" in incident
    assert "| RPO (data lost) |" in incident and "triggered by alice via ui" in incident

    webhook.wait_for(run_id, "completion")
    events = webhook.events(run_id)
    # declare, tell-customers, and tell-customers again after the Failed without a comment
    assert events.count("activation") == 1 and events.count("approval-needed") == 3
    assert "step-failed" not in events and "deadline-missed" not in events


def test_a_run_past_its_rto_notifies_deadline_missed(stack: AirflowStack, probe_run_id: str, webhook: Webhook) -> None:
    webhook.wait_for(probe_run_id, "deadline-missed")
    [body] = [b for b in webhook.received if b["event"] == "deadline-missed"]
    assert body["plan"] == "deadline-probe" and body["dag_id"] == PROBE_ID
    bob = stack.client("bob")
    assert bob.answer(PROBE_ID, probe_run_id, "declare", "Reject").status_code == 200
    assert bob.wait_run(PROBE_ID, probe_run_id)["state"] == "failed"  # refused
