"""Replication watch against a real primary and streaming replica: each fault, one measurement each."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.lsn import parse_lsn
from drflow.engines.postgres.replication import measure_replication
from drflow.engines.postgres.replication_report import ReplicaTarget, ReplicationReport
from tests.fixtures.airflow import dagbag
from tests.fixtures.pg import airflow_conn_json

pytestmark = pytest.mark.slow

SLOT = "test_replica"  # the slot pg_primary_with_replica streams through


def sql(cluster: LocalCluster, query: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None


def measure(primary: LocalCluster, replica: LocalCluster, **overrides: Any) -> ReplicationReport:
    limits: dict[str, Any] = {"warn_lag_s": 60, "max_lag_s": 300, "max_slot_retained_bytes": 1024**3}
    limits.update(overrides)
    target = ReplicaTarget(name="replica-1", conn=replica.conninfo(), slot=SLOT)
    report = measure_replication(primary.conninfo(), [target], connect_timeout=3, **limits)
    json.dumps(report.to_json())  # the report travels through XCom and trigger events
    return report


def write(primary: LocalCluster, rows: int = 1000) -> None:
    sql(primary, "create table if not exists t (id bigint, pad text)")
    sql(primary, "insert into t select n, repeat('x', 100) from generate_series(1, %s) n", (rows,))


def wait_replayed(primary: LocalCluster, replica: LocalCluster, timeout: float = 10) -> None:
    target = parse_lsn(sql(primary, "select pg_current_wal_lsn()::text"))
    deadline = time.monotonic() + timeout
    while parse_lsn(sql(replica, "select pg_last_wal_replay_lsn()::text")) < target:
        assert time.monotonic() < deadline, "replica did not replay the primary's WAL in time"
        time.sleep(0.05)


def wait_for(check: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_healthy_idle_primary_is_not_lag(pg_primary_with_replica: tuple[LocalCluster, LocalCluster]) -> None:
    primary, replica = pg_primary_with_replica
    write(primary, rows=10)
    wait_replayed(primary, replica)
    time.sleep(2.5)  # no writes: the last replayed commit ages while the replica holds every byte

    report = measure(primary, replica, warn_lag_s=1, max_lag_s=2)

    [status] = report.replicas
    assert report.alerts == [] and report.healthy
    assert status.state == "streaming" and status.in_recovery is True
    assert status.lag_seconds is not None and status.lag_seconds < 1
    assert status.lag_bytes is not None and status.lag_bytes < 1024
    assert status.last_replay_at is not None
    naive = (datetime.now(UTC) - datetime.fromisoformat(status.last_replay_at)).total_seconds()
    assert naive > 2, "now() - pg_last_xact_replay_timestamp() would have called this lag"
    assert status.slot is not None and status.slot.active
    assert status.primary_view is not None and status.primary_view["state"] == "streaming"


def test_stopped_replica_is_unreachable_and_its_slot_retains_wal(
    pg_primary_with_replica: tuple[LocalCluster, LocalCluster],
) -> None:
    primary, replica = pg_primary_with_replica
    replica.stop("immediate")
    wait_for(lambda: not sql(primary, "select active from pg_replication_slots where slot_name = %s", (SLOT,)), "slot")

    report = measure(primary, replica)
    assert report.codes() == {"replica_unreachable", "slot_inactive"}
    [unreachable] = [a for a in report.alerts if a.code == "replica_unreachable"]
    assert unreachable.severity == "critical" and unreachable.replica == "replica-1"
    assert "start it" in unreachable.message and str(replica.port) in unreachable.message
    assert report.replicas[0].state == "unreachable" and not report.healthy

    write(primary, rows=2000)
    report = measure(primary, replica, max_slot_retained_bytes=64 * 1024)
    assert "slot_retention_exceeded" in report.codes()
    [retention] = [a for a in report.alerts if a.code == "slot_retention_exceeded"]
    assert retention.severity == "critical" and "pg_drop_replication_slot('test_replica')" in retention.message
    assert report.replicas[0].slot is not None and (report.replicas[0].slot.retained_bytes or 0) > 64 * 1024


def test_paused_replay_is_detected_and_its_lag_grows(
    pg_primary_with_replica: tuple[LocalCluster, LocalCluster],
) -> None:
    primary, replica = pg_primary_with_replica
    write(primary, rows=10)
    wait_replayed(primary, replica)
    sql(replica, "select pg_wal_replay_pause()")
    write(primary)

    first = measure(primary, replica)
    assert first.codes() == {"replay_paused"}
    [alert] = first.alerts
    assert alert.severity == "critical" and "pg_wal_replay_resume()" in alert.message
    [status] = first.replicas
    assert status.state == "paused" and status.replay_pause_state in ("paused", "pause requested")
    assert status.lag_bytes and status.lag_bytes > 0
    assert status.lag_seconds and status.lag_seconds > 0

    time.sleep(1)
    write(primary)
    second = measure(primary, replica, warn_lag_s=0.5)
    assert second.replicas[0].lag_bytes > status.lag_bytes  # type: ignore[operator]
    assert second.replicas[0].lag_seconds > status.lag_seconds  # type: ignore[operator]
    assert second.codes() == {"replay_paused", "lag_warning"}


def test_dropped_slot_is_missing(pg_primary_with_replica: tuple[LocalCluster, LocalCluster]) -> None:
    primary, replica = pg_primary_with_replica
    # The walsender holds the slot: end it, then drop the slot before the replica reconnects (5 s retry).
    deadline = time.monotonic() + 10
    while True:
        sql(primary, "select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = %s", (SLOT,))
        try:
            sql(primary, "select pg_drop_replication_slot(%s)", (SLOT,))
            break
        except psycopg.errors.ObjectInUse:
            assert time.monotonic() < deadline, "could not drop the replica's slot"
            time.sleep(0.05)

    report = measure(primary, replica)
    assert "slot_missing" in report.codes()
    assert report.codes() <= {"slot_missing", "replica_not_streaming"}
    [alert] = [a for a in report.alerts if a.code == "slot_missing"]
    assert alert.severity == "critical" and "pg_create_physical_replication_slot('test_replica', true)" in alert.message
    assert report.replicas[0].slot is not None and report.replicas[0].slot.exists is False


def test_replica_without_wal_receiver_is_not_streaming(
    pg_primary_with_replica: tuple[LocalCluster, LocalCluster],
) -> None:
    primary, replica = pg_primary_with_replica
    sql(replica, "alter system set primary_conninfo = ''")
    sql(replica, "select pg_reload_conf()")
    wait_for(lambda: sql(replica, "select count(*) from pg_stat_wal_receiver") == 0, "the WAL receiver to stop")

    report = measure(primary, replica)
    assert "replica_not_streaming" in report.codes()
    assert report.codes() <= {"replica_not_streaming", "slot_inactive"}
    [status] = report.replicas
    assert status.state == "not_streaming" and status.in_recovery is True
    assert "not running" in next(a.message for a in report.alerts if a.code == "replica_not_streaming")


def test_promoted_replica_warns_of_split_brain_and_a_lost_primary_is_unreachable(
    pg_primary_with_replica: tuple[LocalCluster, LocalCluster],
) -> None:
    primary, replica = pg_primary_with_replica
    assert sql(replica, "select pg_promote(wait => true, wait_seconds => 30)") is True

    report = measure(primary, replica)
    assert "replica_not_in_recovery" in report.codes()
    assert report.codes() <= {"replica_not_in_recovery", "slot_inactive"}
    [alert] = [a for a in report.alerts if a.code == "replica_not_in_recovery"]
    assert alert.severity == "critical" and "split brain" in alert.message
    assert report.replicas[0].state == "not_in_recovery"

    primary.stop("immediate")
    report = measure(primary, replica)
    assert {"primary_unreachable", "replica_not_in_recovery"} <= report.codes()
    assert report.primary.reachable is False and report.replicas[0].lag_bytes is None


WATCH_SPEC = """\
version: 1
metadata: {{name: watch-test, owner: test-team}}
regions: [{{name: east, role: primary}}, {{name: west}}]
components:
  - name: user-database
    criticality: high  # asynchronous by default: the fixture's replica is not synchronous
    rto: 30m
    rpo: 5m
    datastore:
      type: postgres
      database: postgres
      primary: {{conn_id: test_pg_primary, region: east}}
      replicas: [{{name: replica-1, conn_id: test_pg_replica, region: west, slot: {slot}}}]
      replication: {{interval: 2s}}
"""


@pytest.fixture
def watch_dag(
    airflow_db: Path,
    specs_dir_env: Path,
    pg_primary_with_replica: tuple[LocalCluster, LocalCluster],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    primary, replica = pg_primary_with_replica
    for name, cluster in (("PRIMARY", primary), ("REPLICA", replica)):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_TEST_PG_{name}",
            airflow_conn_json(cluster),
        )
    (specs_dir_env / "watch-test.yaml").write_text(WATCH_SPEC.format(slot=SLOT))
    bag = dagbag()
    assert bag.import_errors == {}
    yield bag.dags["dr.watch-test.user-database.replication-watch"]


def report_xcom(run: Any, key: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        value = (
            session.query(XComModel.value)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id="check_replication", key=key)
            .scalar()
        )
    return json.loads(value) if isinstance(value, str) else value


def test_replication_watch_dag_passes_when_healthy_and_fails_on_paused_replay(
    watch_dag: Any, pg_primary_with_replica: tuple[LocalCluster, LocalCluster], capfd: pytest.CaptureFixture[str]
) -> None:
    primary, replica = pg_primary_with_replica
    assert watch_dag.get_task("check_replication").timeout == 2

    healthy = watch_dag.test()
    assert healthy.state == "success"
    result = report_xcom(healthy, "return_value")
    assert result["healthy"] is True and result["replicas"][0]["state"] == "streaming"

    write(primary, rows=10)
    wait_replayed(primary, replica)
    sql(replica, "select pg_wal_replay_pause()")
    write(primary)
    started = time.monotonic()
    failed = watch_dag.test()
    assert failed.state == "failed"
    assert time.monotonic() - started < 30, "the deferred wait must end at the sensor's timeout"
    report = report_xcom(failed, "report")
    assert {a["code"] for a in report["alerts"]} == {"replay_paused"}
    # The task fails with every alert's message: what is wrong and what to do.
    log = capfd.readouterr().out
    assert "AirflowFailException: replication of 1 replica(s) is unhealthy" in log
    assert "replay_paused (replica-1): WAL replay is paused" in log and "pg_wal_replay_resume()" in log


WATCHED_SPEC = """\
version: 1
metadata: {{name: s, owner: test}}
regions: [{{name: us-east-1, role: primary}}]
storage: [{{name: t, type: local, path: {store}}}]
components:
  - name: db
    criticality: low
    rto: 1h
    rpo: 5m
    datastore:
      type: postgres
      database: postgres
      bin_dir: {bin_dir}
      primary: {{conn_id: test_watch_primary, region: us-east-1}}
      replicas: [{{name: replica-1, conn_id: test_watch_replica, region: us-east-1, slot: {slot}}}]
      slot_retention_limit: 16MiB
    backups:
      - {{name: wal, type: incremental, method: pg_receivewal, schedule: "@hourly", targets: [t],
          retention: {{days: 7}}}}
"""


def test_the_watch_also_measures_the_specs_wal_slots_and_orphans_on_the_primary(
    pg_primary_with_replica: tuple[LocalCluster, LocalCluster], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from drflow.engines.postgres.replication_watch import ReplicationWatch
    from drflow.engines.postgres.wal import ensure_slot
    from drflow.plan.replication import replication_watch_plan
    from drflow.spec.load import load_spec_text
    from drflow.spec.slots import WAL_PREFIX, spec_tag, wal_slot_name

    primary, replica = pg_primary_with_replica
    monkeypatch.setenv("AIRFLOW_CONN_TEST_WATCH_PRIMARY", airflow_conn_json(primary))
    monkeypatch.setenv("AIRFLOW_CONN_TEST_WATCH_REPLICA", airflow_conn_json(replica))
    # Component db archives WAL through a slot of its own (16 MiB allowed) and streams to replica-1.
    spec = load_spec_text(WATCHED_SPEC.format(bin_dir=primary.bin_dir, store=tmp_path / "store", slot=SLOT), "s.yaml")
    plan = replication_watch_plan(spec.spec, spec.spec.component("db"), "s.yaml")
    assert plan is not None
    settings = ReplicationWatch.from_params(plan.task("check_replication").params["watch"])
    wal_slot, removed = wal_slot_name("s", "db", "wal"), f"{WAL_PREFIX}{spec_tag('s')}_db_removed"
    for slot in (wal_slot, removed):
        ensure_slot(primary.conninfo(), slot)
    report = settings.measure()
    assert report.healthy and report.codes() == {"slot_orphaned"}  # an orphan is a warning

    for _ in range(3):  # ~48 MiB of WAL: the replica keeps up, the WAL slots hold it all
        write(primary, rows=10)
        sql(primary, "select pg_switch_wal()")
    wait_replayed(primary, replica)
    report = settings.measure()
    assert not report.healthy
    by_slot = {s["name"]: s for s in report.slots}
    assert by_slot[SLOT]["alerts"] == [] and by_slot[SLOT]["kind"] == "replica"
    exceeded = [a for a in report.alerts if a.code == "slot_retention_exceeded"]
    assert len(exceeded) == 2 and all(a.severity == "critical" for a in exceeded)
    assert any(f"'{wal_slot}' of WAL policy wal of s/db holds back" in a.message for a in exceeded)
    assert any(f"--spec s.yaml --component db --slot {removed}" in a.message for a in exceeded)
    json.dumps(report.to_json())  # it travels through XCom and trigger events
