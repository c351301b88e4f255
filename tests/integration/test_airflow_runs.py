"""The compiled DAGs run through Airflow itself (dag.test()) against real PostgreSQL and moto S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drflow.engines.postgres.cluster import LocalCluster
from drflow.store.factory import target_catalogs
from tests.fixtures.airflow import dagbag
from tests.fixtures.pg import airflow_conn_env, create_database

pytestmark = pytest.mark.slow

SPEC = """\
version: 1
metadata:
  name: drill-test
  owner: test-team
defaults:
  retries: 0
regions:
  - name: us-east-1
    role: primary
storage:
  - name: s3-primary
    type: s3
    bucket: {bucket}
    conn_id: {s3_conn_id}
    region: us-east-1
    prefix: {prefix}
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
      primary:
        conn_id: test_pg_primary
        region: us-east-1
    backups:
      - name: daily-full
        type: full
        method: pg_basebackup
        schedule: "0 2 * * *"
        targets: [s3-primary]
        retention:
          days: 7
    drills:
      - name: weekly-restore
        type: restore
        schedule: "@weekly"
        validation:
          - name: accounts-count
            query: select count(*) from accounts
          - name: accounts-digest
            query: select md5(string_agg(id::text || email, ',' order by id)) from accounts
          - name: fixed-count
            query: select count(*) from accounts where id <= 10
            expected: "10"
"""


@pytest.fixture
def primary_conn(pg_primary: LocalCluster) -> Iterator[LocalCluster]:
    create_database(
        pg_primary,
        "users",
        "create table accounts (id bigint primary key, email text not null)",
        "insert into accounts select n, 'u' || n || '@example.com' from generate_series(1, 3000) n",
    )
    with airflow_conn_env("test_pg_primary", pg_primary):
        yield pg_primary


def test_backup_and_restore_drill_dags_run_through_airflow(
    airflow_db: Path,
    specs_dir_env: Path,
    primary_conn: LocalCluster,
    s3_target: dict[str, Any],
) -> None:
    (specs_dir_env / "drill-test.yaml").write_text(
        SPEC.format(
            bucket=s3_target["bucket"],
            s3_conn_id=s3_target["conn_id"],
            prefix=s3_target["prefix"],
            bin_dir=primary_conn.bin_dir,
        )
    )
    bag = dagbag()
    assert bag.import_errors == {}
    backup = bag.dags["dr.drill-test.user-database.backup.daily-full"]
    drill = bag.dags["dr.drill-test.user-database.drill.weekly-restore"]

    backup_run = backup.test()
    assert backup_run.state == "success"
    drill_run = drill.test()
    assert drill_run.state == "success"

    [(_, catalog)] = target_catalogs("drill-test", [{**s3_target, "name": "s3-primary"}])
    [manifest] = catalog.list_backups("user-database")
    assert manifest.validation_values["accounts-count"] == "3000"
    [report] = catalog.read_reports("user-database", "drill")
    assert report["passed"] is True and report["rto_met"] is True
    assert report["backup_id"] == manifest.backup_id
    assert [c["passed"] for c in report["checks"]] == [True, True, True]
    assert 0 < report["restore_s"] < 30 * 60
    assert report["dag_id"] == drill.dag_id
