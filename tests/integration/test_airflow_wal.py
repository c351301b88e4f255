"""The rendered incremental (WAL) backup DAG and the restore DAG, run through Airflow's dag.test()
against real PostgreSQL and moto S3."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drflow.engines.postgres.cluster import LocalCluster
from drflow.store.factory import target_catalogs
from drflow.store.wal import recovery_point
from tests.fixtures.airflow import dagbag
from tests.fixtures.pg import airflow_conn_env, create_database

pytestmark = pytest.mark.slow

SPEC = """\
version: 1
metadata: {{name: wal-test, owner: test-team}}
defaults: {{retries: 0}}
regions: [{{name: us-east-1, role: primary}}]
storage:
  - {{name: s3-primary, type: s3, bucket: {bucket}, conn_id: {s3_conn_id}, region: us-east-1, prefix: {prefix}}}
components:
  - name: user-database
    criticality: critical
    rto: 30m
    rpo: 5m
    datastore:
      type: postgres
      database: users
      bin_dir: {bin_dir}
      primary: {{conn_id: test_wal_primary, region: us-east-1}}
    backups:
      - {{preset: database, targets: [s3-primary], retention: {{days: 7}}}}
"""


@pytest.fixture
def primary(pg_primary: LocalCluster) -> Iterator[LocalCluster]:
    create_database(
        pg_primary,
        "users",
        "create table accounts (id bigint primary key, created timestamptz default clock_timestamp())",
        "insert into accounts (id) select generate_series(1, 100)",
    )
    with airflow_conn_env("test_wal_primary", pg_primary):
        yield pg_primary


def test_wal_backup_and_point_in_time_restore_dags_run_through_airflow(
    airflow_db: Path,
    specs_dir_env: Path,
    primary: LocalCluster,
    pg_workdir: Path,
    s3_target: dict[str, Any],
) -> None:
    (specs_dir_env / "wal-test.yaml").write_text(
        SPEC.format(
            bucket=s3_target["bucket"],
            s3_conn_id=s3_target["conn_id"],
            prefix=s3_target["prefix"],
            bin_dir=primary.bin_dir,
        )
    )
    bag = dagbag()
    assert bag.import_errors == {}
    prefix = "dr.wal-test.user-database"
    assert bag.dags[f"{prefix}.backup.daily-full"].test().state == "success"
    with psycopg.connect(**primary.conninfo("users").libpq_kwargs(), autocommit=True) as conn:
        for n in range(101, 111):
            conn.execute("insert into accounts (id) values (%s)", (n,))
    wal_dag = bag.dags[f"{prefix}.backup.hourly-wal"]
    assert wal_dag.task_dict["archive_wal"].upstream_task_ids == {"check_source"}
    assert wal_dag.task_dict["check_wal_chain"].upstream_task_ids == {"archive_wal"}
    assert wal_dag.task_dict["check_slots"].upstream_task_ids == {"check_source"}  # beside the archive
    assert wal_dag.test().state == "success"

    [(_, catalog)] = target_catalogs("wal-test", [{**s3_target, "name": "s3-primary"}])
    full, wal = catalog.list_backups("user-database")
    assert (full.backup_type, wal.backup_type, wal.parent_id) == ("full", "incremental", full.backup_id)
    point = recovery_point(wal)
    assert point is not None
    with psycopg.connect(**primary.conninfo("users").libpq_kwargs()) as conn:
        row = conn.execute("select created from accounts where id = 106").fetchone()
    assert row is not None
    target = row[0]  # taken inside row 106's transaction: after row 105 committed, before row 106 did

    restore = bag.dags[f"{prefix}.restore"]
    restore_to = pg_workdir / "restored"
    conf = {"target_time": target.isoformat(), "restore_to": str(restore_to), "start": True}
    assert restore.test(run_conf=conf).state == "success"
    restored = LocalCluster(restore_to, 0, restore_to.parent / "socket", primary.bin_dir, primary.host)
    port = restored.running_port()
    assert port is not None
    restored.port = port
    try:
        with psycopg.connect(**restored.conninfo("users").libpq_kwargs()) as conn:
            row = conn.execute("select count(*), max(id) from accounts").fetchone()
        assert row is not None and tuple(row) == (105, 105)
    finally:
        restored.stop()

    refused_dir = pg_workdir / "never-created"
    too_late = {"target_time": (point.time + timedelta(hours=1)).isoformat(), "restore_to": str(refused_dir)}
    assert restore.test(run_conf=too_late).state == "failed"
    assert not refused_dir.exists()
