"""drflow's DAGs, unchanged, on Airflow's CeleryExecutor: two `airflow celery worker`s on a Redis broker, a
PostgreSQL metadata database, the scheduler, dag-processor, triggerer and api-server.

A backup DAG runs with one worker killed (SIGKILL to its process group and its task's) while the backup's
objects are on their way to the second target, behind a slow link (the first target then holds every object of
the backup but no manifest, which is no catalog entry); Airflow's heartbeat detection fails the try, and the
retry on the other worker completes the backup.
Then the region-failover plan runs through its approval. Tasks that run near the databases go to the
`drflow-db` queue the spec names (`defaults.datastore_queue`), the rest to Airflow's default queue.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drflow.devtools.sandbox.s3 import aws_conn_uri_json, create_buckets
from drflow.engines.postgres.cluster import LocalCluster, create_replica, free_port
from drflow.hosts import LocalHost
from drflow.store.catalog import Catalog
from drflow.store.s3 import S3Store
from tests.e2e.airflow_stack import AirflowStack, airflow_stack
from tests.e2e.celery_broker import CeleryExecutorOptions, CeleryWorker, claimed_broker
from tests.fixtures.pg import (
    PG_BIN_DIR,
    airflow_conn_json,
    create_database,
    pg_workdir_context,
    query_value,
    running_cluster,
)
from tests.fixtures.procs import pids_in_session
from tests.fixtures.s3 import MotoServer, drop_bucket, moto_s3_client
from tests.fixtures.slow_link import slow_link

pytestmark = pytest.mark.slow

SPEC_NAME = "celery"
BACKUP_DAG = f"dr.{SPEC_NAME}.user-database.backup.daily-full"
PLAN_DAG = f"dr.{SPEC_NAME}.plan.region-failover"
ROWS = 500
BLOB_MIB = 16
"""Incompressible data in the database: its upload over the slow link is the window in which a worker dies."""
FAR_RATE = 4 << 20
"""Bytes a second towards the second target: the backup's 16 MiB take 4 s."""
HEARTBEAT_TIMEOUT_S = 15
S3_CONN_ID = "celery_s3"
FAR_S3_CONN_ID = "celery_s3_far"

SPEC = """\
version: 1
metadata: {{name: {spec}, owner: test-team}}
defaults: {{retries: 0, datastore_queue: drflow-db}}
regions:
  - {{name: us-east-1, role: primary}}
  - {{name: us-west-2}}
storage:
  - {{name: s3-a, type: s3, bucket: {bucket_a}, conn_id: {s3_conn}, region: us-east-1}}
  - {{name: s3-b, type: s3, bucket: {bucket_b}, conn_id: {far_s3_conn}, region: us-west-2}}
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
      primary: {{conn_id: celery_pg_primary, region: us-east-1, data_directory: {primary_dir}}}
      replicas:
        - {{name: replica-1, conn_id: celery_pg_replica, region: us-west-2, data_directory: {replica_dir},
           slot: test_replica}}
      replication: {{enabled: false}}
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "0 2 * * *", targets: [s3-a, s3-b],
         retention: {{days: 7}}, retries: 1, retry_delay: 1s}}
recovery_plans:
  - name: region-failover
    scenario: infrastructure-failure
    status: approved
    components: [user-database]
    approval: {{approvers: [bob], four_eyes: true, timeout: 10m}}
    steps:
      - {{name: gate-lag, action: gate_lag, component: user-database, node: replica-1, timeout: 1m}}
      - {{name: fence-primary, action: fence, component: user-database, node: primary, timeout: 1m}}
      - {{name: promote-replica, action: promote, component: user-database, node: replica-1, timeout: 2m}}
      - name: validate-new-primary
        action: validate_sql
        component: user-database
        node: replica-1
        verification: true
        checks:
          - {{name: writable, query: select not pg_is_in_recovery(), expected: "true"}}
          - {{name: accounts, query: select count(*) from accounts, expected: "{rows}"}}
"""


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[LocalCluster, LocalCluster, LocalCluster]]:
    """The data's primary and replica, and a cluster of its own for Airflow's metadata database."""
    host = LocalHost()
    with (
        pg_workdir_context(host) as workdir,
        running_cluster(workdir, "primary", host) as primary,
        running_cluster(workdir, "airflow-meta", host) as meta,
    ):
        query_value(meta, "create database airflow")
        create_database(
            primary,
            "users",
            "create table accounts (id bigint primary key, email text not null)",
            f"insert into accounts select n, 'u' || n || '@example.com' from generate_series(1, {ROWS}) n",
        )
        replica = create_replica(primary, workdir / "replica", free_port(), "test_replica", socket_dir=workdir / "run")
        try:
            with psycopg.connect(**primary.conninfo("users").libpq_kwargs(), autocommit=True) as conn:
                conn.execute("create table blobs (id int primary key, data bytea)")
                conn.execute("alter table blobs alter column data set storage external")  # no pglz attempt
                with conn.cursor().copy("copy blobs (id, data) from stdin") as copy:
                    for n in range(BLOB_MIB):
                        copy.write_row((n, os.urandom(1 << 20)))
            yield primary, replica, meta
        finally:
            replica.stop("immediate")


@pytest.fixture(scope="module")
def buckets(moto_server: MotoServer) -> Iterator[tuple[str, str]]:
    names = (f"drflow-celery-a-{uuid.uuid4().hex[:8]}", f"drflow-celery-b-{uuid.uuid4().hex[:8]}")
    create_buckets(moto_server.endpoint_url, names, moto_server.region)
    yield names
    for name in names:
        drop_bucket(moto_server, name)


@pytest.fixture(scope="module")
def spec_file(clusters: tuple[LocalCluster, LocalCluster, LocalCluster], buckets: tuple[str, str]) -> Iterator[Path]:
    primary, replica, _ = clusters
    with tempfile.TemporaryDirectory(prefix="drflow-e2e-celery-specs-") as specs:
        path = Path(specs) / f"{SPEC_NAME}.yaml"
        path.write_text(
            SPEC.format(
                spec=SPEC_NAME,
                bucket_a=buckets[0],
                bucket_b=buckets[1],
                s3_conn=S3_CONN_ID,
                far_s3_conn=FAR_S3_CONN_ID,
                bin_dir=PG_BIN_DIR,
                primary_dir=primary.data_dir,
                replica_dir=replica.data_dir,
                rows=ROWS,
            )
        )
        yield path


@pytest.fixture(scope="module")
def connections(
    clusters: tuple[LocalCluster, LocalCluster, LocalCluster], moto_server: MotoServer
) -> Iterator[dict[str, str]]:
    """The spec's connections; the second target's S3 goes through a slow link (a far region)."""
    primary, replica, _ = clusters
    with slow_link(moto_server.port, FAR_RATE) as far:
        yield {
            "AIRFLOW_CONN_CELERY_PG_PRIMARY": airflow_conn_json(primary),
            "AIRFLOW_CONN_CELERY_PG_REPLICA": airflow_conn_json(replica),
            f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": aws_conn_uri_json(moto_server.endpoint_url, moto_server.region),
            f"AIRFLOW_CONN_{FAR_S3_CONN_ID.upper()}": aws_conn_uri_json(far.url, moto_server.region),
        }


@pytest.fixture(scope="module")
def stack(
    clusters: tuple[LocalCluster, LocalCluster, LocalCluster], spec_file: Path, connections: dict[str, str]
) -> Iterator[AirflowStack]:
    meta = clusters[2]
    queues = ("default", "drflow-db")
    with claimed_broker() as broker_url:
        celery = CeleryExecutorOptions(
            metadata_url=f"postgresql+psycopg://{meta.superuser}@127.0.0.1:{meta.port}/airflow",
            broker_url=broker_url,
            workers=(CeleryWorker("w1", queues), CeleryWorker("w2", queues)),
        )
        extra_env = {
            # A killed worker sends no more heartbeats: the scheduler fails the try after this long.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
        }
        with airflow_stack(spec_file.parent, connections, celery=celery, extra_env=extra_env) as running:
            alice = running.client("alice")
            alice.wait_for_dag(BACKUP_DAG)
            alice.wait_for_dag(PLAN_DAG)
            alice.unpause(PLAN_DAG)
            yield running


def backup_keys(moto: MotoServer, bucket: str) -> list[str]:
    page = moto_s3_client(moto).list_objects_v2(Bucket=bucket, Prefix=f"{SPEC_NAME}/user-database/backups/")
    return [str(o["Key"]) for o in page.get("Contents", [])]


def catalogs(buckets: tuple[str, str]) -> list[Catalog]:
    """Both targets' catalogs, read directly (the test's own AIRFLOW_CONN_CELERY_S3), not through the slow link."""
    return [Catalog(S3Store(bucket, aws_conn_id=S3_CONN_ID, region="us-east-1"), SPEC_NAME) for bucket in buckets]


def cli_backups(spec_file: Path, connections: dict[str, str]) -> list[dict[str, Any]]:
    drflow = str(Path(sys.executable).with_name("drflow"))
    done = subprocess.run(
        [drflow, "backups", "list", "--spec", str(spec_file), "--json"],
        env={**os.environ, **connections},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def unacked_workloads(broker_url: str) -> list[str]:
    """The log paths of the workloads the broker delivered and no worker acknowledged."""
    import redis

    client = redis.Redis.from_url(broker_url)
    paths = []
    unacked: list[bytes] = client.hvals("unacked")  # type: ignore[assignment]  # the sync client's answer
    for raw in unacked:
        message = json.loads(raw)[0]  # kombu's redis transport keeps [message, exchange, routing key]
        args = json.loads(base64.b64decode(message["body"]))[0]  # Celery's protocol 2 body: [args, kwargs, embed]
        paths.append(str(json.loads(args[0])["log_path"]))
    client.close()
    return paths


def kill_worker_of(stack: AirflowStack, ti: dict[str, Any]) -> str:
    """SIGKILL the worker running the task instance: its process group and its task's own group."""
    task_pid = int(ti["pid"])
    session = os.getsid(task_pid)
    [name] = [name for name, process in stack.processes.items() if process.pid == session]
    stack.killed.add(name)
    os.killpg(session, signal.SIGKILL)  # celery main process, pool children, the task's supervisor
    os.killpg(task_pid, signal.SIGKILL)  # the task runner: the supervisor put it in a group of its own
    stack.processes[name].wait(timeout=10)
    deadline = time.monotonic() + 10
    while pids_in_session(session) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pids_in_session(session), f"processes of {name} outlived SIGKILL: {pids_in_session(session)}"
    return name


def test_a_worker_killed_mid_backup_leaves_no_entry_and_the_other_worker_retries(
    stack: AirflowStack,
    moto_server: MotoServer,
    buckets: tuple[str, str],
    spec_file: Path,
    connections: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", connections[f"AIRFLOW_CONN_{S3_CONN_ID.upper()}"])
    alice = stack.client("alice")
    # DAGs have no start date (they start on their next slot), so the test triggers the run it follows.
    alice.unpause(BACKUP_DAG)
    run_id = alice.trigger(BACKUP_DAG, {}, note="celery e2e")
    alice.wait_task(BACKUP_DAG, run_id, "take_backup", {"running"}, timeout=180)

    # Mid-way: every object is in the first target and the second is receiving them; no manifest yet.
    deadline = time.monotonic() + 180
    while not backup_keys(moto_server, buckets[1]):
        assert time.monotonic() < deadline, "no object of the backup reached the second target"
        time.sleep(0.05)
    ti = alice.get(f"/api/v2/dags/{BACKUP_DAG}/dagRuns/{run_id}/taskInstances/take_backup")
    killed = kill_worker_of(stack, ti)
    survivor = next(name for name in stack.processes if name.startswith("worker-") and name != killed)
    assert ti["queue"] == "drflow-db" and ti["try_number"] == 1

    partial = backup_keys(moto_server, buckets[0])
    left = partial + backup_keys(moto_server, buckets[1])
    assert len(partial) >= 3 and not [k for k in left if k.endswith("/manifest.json")], (
        f"not killed in the middle of the upload ({left}); raise BLOB_MIB or lower FAR_RATE"
    )
    # A backup directory without a manifest is not a catalog entry: neither the store nor the CLI shows it.
    assert all(c.list_backups() == [] for c in catalogs(buckets))
    assert cli_backups(spec_file, connections) == []

    run = alice.wait_run(BACKUP_DAG, run_id, timeout=240)
    states = {task: ti["state"] for task, ti in alice.task_instances(BACKUP_DAG, run_id).items()}
    assert run["state"] == "success", states
    take = alice.get(f"/api/v2/dags/{BACKUP_DAG}/dagRuns/{run_id}/taskInstances/take_backup")
    assert take["try_number"] == 2 and take["queue"] == "drflow-db"
    tries = alice.get(f"/api/v2/dags/{BACKUP_DAG}/dagRuns/{run_id}/taskInstances/take_backup/tries")
    assert [t["state"] for t in tries["task_instances"]] == ["failed", "success"]
    verify = alice.get(f"/api/v2/dags/{BACKUP_DAG}/dagRuns/{run_id}/taskInstances/verify_backup")
    assert verify["queue"] == "default"
    # Airflow's heartbeat detection failed the killed try (the broker did not redeliver it: acks late and a
    # visibility timeout of a day), and the retry ran on the worker still alive.
    events = alice.get("/api/v2/eventLogs", dag_id=BACKUP_DAG, task_id="take_backup", limit=100)["event_logs"]
    assert "heartbeat timeout" in {e["event"] for e in events}
    assert stack.processes[survivor].poll() is None
    assert "task_id=take_backup/attempt=1.log" in stack.log(killed).read_text(errors="replace")
    assert "task_id=take_backup/attempt=2.log" in stack.log(survivor).read_text(errors="replace")
    # Acks late: the killed try's message is still unacknowledged in the broker; Redis would hand it out again
    # after the visibility timeout, and the execution API would refuse it (that try's instance is gone).
    # The survivor acknowledges try 2's message just after the task ends (acks late): wait for that ack first.
    broker, retried = stack.env["AIRFLOW__CELERY__BROKER_URL"], "/task_id=take_backup/attempt=2.log"
    deadline = time.monotonic() + 30
    while any(path.endswith(retried) for path in unacked_workloads(broker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    unacked = unacked_workloads(broker)
    assert [path for path in unacked if "/task_id=take_backup/" in path] == [
        f"dag_id={BACKUP_DAG}/run_id={run_id}/task_id=take_backup/attempt=1.log"
    ]

    backup_id = partial[0].split("/")[3]
    for catalog in catalogs(buckets):
        [entry] = catalog.list_backups()
        assert entry.backup_id == backup_id and (entry.database_size_bytes or 0) > BLOB_MIB << 20
    listed = cli_backups(spec_file, connections)
    assert sorted((row["target"], row["backup_id"]) for row in listed) == [("s3-a", backup_id), ("s3-b", backup_id)]


def test_the_region_failover_plan_runs_through_its_approval_on_celery(
    stack: AirflowStack, clusters: tuple[LocalCluster, LocalCluster, LocalCluster]
) -> None:
    primary, replica, _ = clusters
    alice, bob = stack.client("alice"), stack.client("bob")
    run_id = alice.trigger(PLAN_DAG, {"reason": "celery e2e: us-east-1 is down"}, note="celery")
    assert bob.answer(PLAN_DAG, run_id, "declare", "Approve").status_code == 200
    run = alice.wait_run(PLAN_DAG, run_id, timeout=180)
    alice.wait_task(PLAN_DAG, run_id, "record", {"success"})  # a teardown: the run's state does not wait for it
    tis = alice.task_instances(PLAN_DAG, run_id)
    assert run["state"] == "success", {task: ti["state"] for task, ti in tis.items()}
    assert {task: ti["state"] for task, ti in tis.items()} == dict.fromkeys(tis, "success")
    near_db = {"assess", "gate-lag", "fence-primary", "promote-replica", "validate-new-primary"}
    assert {task: ti["queue"] for task, ti in tis.items()} == {
        task: "drflow-db" if task in near_db else "default" for task in tis
    }
    assert query_value(replica, "select pg_is_in_recovery()") is False
    assert query_value(primary, "show default_transaction_read_only") == "on"
    assert alice.xcom(PLAN_DAG, run_id, "validate-new-primary")["passed"] is True
    record = alice.xcom(PLAN_DAG, run_id, "record")
    assert record["outcome"] == "recovered"
