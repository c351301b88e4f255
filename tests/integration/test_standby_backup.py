"""Backups from a standby (`from: replica-1`) against a real primary and streaming replica: pg_basebackup of the
replica (restored and started), pgBackRest with backup-standby, and the refusal while the replica lags past
the RPO. Inputs come from the plan builders, as a DAG's tasks get them."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from drflow.contracts import BackupRun
from drflow.engines.postgres.cluster import LocalCluster, create_replica, free_port
from drflow.engines.postgres.pgbackrest_config import stanza_settings
from drflow.engines.postgres.refusal import LagExceeded
from drflow.hosts import Host
from drflow.jobs.backup import FullBackupRequest, take_full_backup
from drflow.jobs.pgbackrest import PgBackRestBackupRequest, StanzaAccess, check_stanza, take_pgbackrest_backup
from drflow.jobs.restore import restore_backup, start_scratch_instance
from drflow.operators.policy import request_fields, standby_source
from drflow.spec.load import load_spec_text
from drflow.store.factory import target_catalogs
from tests.fixtures.pg import airflow_conn_env
from tests.fixtures.pgbackrest import archiving_primary
from tests.plan_inputs import plans

pytestmark = pytest.mark.slow

SPEC = """\
version: 1
metadata: {{name: {name}, owner: test-team}}
regions: [{{name: us-east-1, role: primary}}]
storage:
  - {{name: store, type: local, path: {root}/store, region: us-east-1}}
components:
  - name: orders
    criticality: low
    rto: 1h
    rpo: 5m
    datastore:
      type: postgres
      database: shop
      primary: {{conn_id: x10_standby_primary, region: us-east-1, data_directory: {root}/primary}}
      replicas:
        - {{name: replica-1, conn_id: x10_standby_replica, region: us-east-1, data_directory: {root}/replica}}
      pgbackrest: {{socket_dir: {root}/run, config: {root}/pgbackrest.conf}}
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "@daily", targets: [store], from: replica-1,
          retention: {{days: 7}}}}
      - {{name: weekly-full, type: full, method: pgbackrest, schedule: "@weekly", targets: [store], from: replica-1,
          retention: {{days: 14}}}}
"""


def _run_of(text: str, root: Path, policy: str, task: str) -> BackupRun:
    [dag] = [p for p in plans(text, str(root / "spec.yaml")) if p.dag_id.endswith(f".backup.{policy}")]
    return BackupRun.from_params(dag.task(task).params["run"])


def _sql(cluster: LocalCluster, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(**cluster.conninfo("shop").libpq_kwargs(), autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def primary_and_replica(
    pg_workdir: Path, pg_host: Host, pg_bin_dir: Path
) -> Iterator[tuple[str, LocalCluster, LocalCluster]]:
    name = f"standby-{uuid.uuid4().hex[:6]}"
    text = SPEC.format(name=name, root=pg_workdir)
    spec = load_spec_text(text, pg_workdir / "spec.yaml").spec
    settings = stanza_settings(spec, spec.component("orders"))
    with archiving_primary(pg_workdir, pg_host, pg_bin_dir, settings, rows=500) as primary:
        replica = create_replica(
            primary, pg_workdir / "replica", free_port(), "replica_1", socket_dir=pg_workdir / "run"
        )
        try:
            with airflow_conn_env("x10_standby_primary", primary), airflow_conn_env("x10_standby_replica", replica):
                yield text, primary, replica
        finally:
            replica.stop("immediate")


def test_backups_come_from_the_replica_and_a_lagging_one_is_refused(
    primary_and_replica: tuple[str, LocalCluster, LocalCluster],
    pg_workdir: Path,
    pg_host: Host,
    pg_bin_dir: Path,
) -> None:
    text, primary, replica = primary_and_replica
    root = pg_workdir
    spec = load_spec_text(text, root / "spec.yaml").spec
    name = spec.metadata.name

    # pg_basebackup of the replica: a standby's backup (backup_label says so) that restores.
    run = _run_of(text, root, "daily-full", "take_backup")
    standby = standby_source(run)
    assert standby is not None and standby.conn.port == replica.port and standby.max_lag_s == 300
    manifest = take_full_backup(
        FullBackupRequest(
            **request_fields(run, "b1-full"), conn=primary.conninfo("shop"), bin_dir=pg_bin_dir, standby=standby
        )
    )
    assert manifest.extra["from"] == "replica-1" and manifest.extra["standby_lag_s"] is not None
    [(_, catalog)] = target_catalogs(name, run.targets)
    restored = restore_backup(catalog, manifest, root / "restored", host=pg_host, bin_dir=pg_bin_dir)
    assert "BACKUP FROM: standby" in (restored.data_dir / "backup_label").read_text()
    server = start_scratch_instance(restored.data_dir, host=pg_host, bin_dir=pg_bin_dir)
    try:
        with psycopg.connect(**server.conninfo("shop").libpq_kwargs()) as conn:
            assert conn.execute("select count(*) from items").fetchone() == (500,)
    finally:
        server.stop("immediate")

    # pgBackRest with backup-standby: the replica is pg2, its files are copied.
    run = _run_of(text, root, "weekly-full", "pgbackrest_backup")
    settings = stanza_settings(spec, spec.component("orders"))
    access = StanzaAccess(settings, primary.conninfo("shop"))
    check_stanza(access, host=pg_host)
    standby_access = dataclasses.replace(access, standby=standby_source(run))
    assert "backup-standby=y" in standby_access.config_text() and "backup-standby" not in access.config_text()
    request = PgBackRestBackupRequest(**request_fields(run, "b2-full"), backup_type="full", access=standby_access)
    [recorded] = take_pgbackrest_backup(request, host=pg_host)
    assert recorded.extra["from"] == "replica-1"
    label = recorded.extra["label"]
    backup_manifest = root / "store" / "pgbackrest" / "backup" / settings.stanza / label / "backup.manifest"
    assert "option-backup-standby=true" in backup_manifest.read_text()  # pgBackRest copied the standby's files

    # A replica further behind than the RPO is refused, nothing stored.
    _sql(primary, "insert into items values (10000, 1)")
    while _sql(replica, "select count(*) from items where id = 10000") != [(1,)]:
        time.sleep(0.05)  # it replayed a commit: the age of the last one is its lag
    _sql(replica, "select pg_wal_replay_pause()")
    try:
        _sql(primary, "insert into items values (10001, 1)")
        strict = dataclasses.replace(standby, max_lag_s=1)
        with pytest.raises(LagExceeded) as refused:
            take_full_backup(
                FullBackupRequest(
                    **request_fields(_run_of(text, root, "daily-full", "take_backup"), "b3-full"),
                    conn=primary.conninfo("shop"),
                    bin_dir=pg_bin_dir,
                    standby=strict,
                )
            )
    finally:
        _sql(replica, "select pg_wal_replay_resume()")
    message = str(refused.value)
    assert message.startswith("refused: replica replica-1") and "behind the primary" in message
    assert "more than the component's RPO of 1s" in message and "remove `from: replica-1`" in message
    assert [m.backup_id for m in catalog.list_backups("orders")] == ["b1-full", "b2-full"]
