"""Full backup → store → restore with real PostgreSQL, a local store and moto S3 over HTTP."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drflow.engines.postgres.basebackup import BackupError
from drflow.engines.postgres.cluster import LocalCluster
from drflow.hosts import Host
from drflow.jobs.backup import FullBackupRequest, take_full_backup
from drflow.jobs.restore import choose_backup, restore_backup, start_scratch_instance
from drflow.store.catalog import CorruptBackupError
from drflow.store.factory import target_catalogs
from tests.fixtures.backups import full_backup_request

pytestmark = pytest.mark.slow

FINGERPRINT = "select count(*), md5(string_agg(id::text || email, ',' order by id)) from accounts"


def _seed(cluster: LocalCluster, rows: int) -> tuple[Any, ...]:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute("create table if not exists accounts (id bigint primary key, email text not null)")
        conn.execute("insert into accounts select n, 'u' || n || '@example.com' from generate_series(1, %s) n", (rows,))
        row = conn.execute(FINGERPRINT).fetchone()
    assert row is not None
    return tuple(row)


def _request(cluster: LocalCluster, targets: list[dict[str, Any]], backup_id: str, **extra: Any) -> FullBackupRequest:
    validation = [{"name": "accounts-count", "query": "select count(*) from accounts"}]
    return full_backup_request(cluster, targets, backup_id, **{"validation": validation, **extra})


def test_backup_then_restore_gives_the_same_data(
    pg_primary: LocalCluster,
    pg_workdir: Path,
    pg_host: Host,
    local_target: dict[str, Any],
    s3_target: dict[str, Any],
) -> None:
    fingerprint = _seed(pg_primary, 20_000)
    manifest = take_full_backup(_request(pg_primary, [local_target, s3_target], "20261127T000000Z-daily-full-aaaaaa"))
    assert manifest.validation_values == {"accounts-count": "20000"}
    assert {o.name for o in manifest.objects} == {"base.tar.zst", "pg_wal.tar.zst", "backup_manifest"}
    assert manifest.start_lsn and manifest.end_lsn and manifest.system_identifier

    with psycopg.connect(**pg_primary.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute("delete from accounts where id % 2 = 0")  # the "disaster" after the backup

    for name, catalog in target_catalogs("test-spec", [local_target, s3_target]):
        chosen = choose_backup(catalog, "users")
        assert chosen.backup_id == manifest.backup_id, name
        data_dir = pg_workdir / f"restored-{name}"
        restore_backup(catalog, chosen, data_dir, host=pg_host, bin_dir=pg_primary.bin_dir)
        instance = start_scratch_instance(data_dir, host=pg_host, bin_dir=pg_primary.bin_dir)
        try:
            with psycopg.connect(**instance.conninfo().libpq_kwargs()) as conn:
                row = conn.execute(FINGERPRINT).fetchone()
            assert row is not None and tuple(row) == fingerprint, name
        finally:
            instance.stop(mode="immediate")


def test_a_corrupted_object_is_refused_by_name_and_nothing_changes(
    pg_primary: LocalCluster, pg_workdir: Path, pg_host: Host, s3_target: dict[str, Any]
) -> None:
    _seed(pg_primary, 1000)
    manifest = take_full_backup(_request(pg_primary, [s3_target], "20261127T000000Z-daily-full-bbbbbb"))
    [(_, catalog)] = target_catalogs("test-spec", [s3_target])
    key = catalog.object_key("users", manifest.backup_id, "base.tar.zst")
    original = catalog.store.get_bytes(key)
    catalog.store.put_bytes(key, original[:100] + bytes([original[100] ^ 0xFF]) + original[101:])

    target = pg_workdir / "restore-here"
    with pytest.raises(CorruptBackupError) as refused:
        restore_backup(catalog, manifest, target, host=pg_host, bin_dir=pg_primary.bin_dir)
    assert "base.tar.zst" in str(refused.value)
    assert not target.exists()
    assert catalog.verify(manifest) and "base.tar.zst" in catalog.verify(manifest)[0]


def test_primary_killed_mid_backup_leaves_no_entry_and_the_retry_succeeds(
    pg_primary: LocalCluster, local_target: dict[str, Any], s3_target: dict[str, Any]
) -> None:
    with psycopg.connect(**pg_primary.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute(
            "create table big as select g as id, repeat(md5(g::text), 30) as pad from generate_series(1, 100000) g"
        )
    targets = [local_target, s3_target]
    backup_id = "20261127T000000Z-daily-full-cccccc"
    outcome: list[BaseException] = []

    def first_try() -> None:
        try:
            take_full_backup(_request(pg_primary, targets, backup_id, max_rate="32M", validation=[]))
        except BaseException as exc:  # noqa: BLE001 - the test inspects what the task would have raised
            outcome.append(exc)

    worker = threading.Thread(target=first_try)
    worker.start()
    deadline = time.monotonic() + 30
    streamed = 0
    while streamed < 10 * 2**20 and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.05)
        with psycopg.connect(**pg_primary.conninfo().libpq_kwargs()) as conn:
            row = conn.execute("select coalesce(max(backup_streamed), 0) from pg_stat_progress_basebackup").fetchone()
        streamed = int(row[0]) if row else 0
    assert streamed >= 10 * 2**20, f"the backup never got going: {outcome}"
    pg_primary.stop("immediate")
    worker.join(60)

    assert len(outcome) == 1 and isinstance(outcome[0], BackupError), outcome
    for _, catalog in target_catalogs("test-spec", targets):
        assert catalog.list_backups("users") == []

    pg_primary.start()
    manifest = take_full_backup(_request(pg_primary, targets, backup_id, validation=[]))
    again = take_full_backup(_request(pg_primary, targets, backup_id, validation=[]))
    assert again == manifest
    for _, catalog in target_catalogs("test-spec", targets):
        assert [m.backup_id for m in catalog.list_backups("users")] == [backup_id]
