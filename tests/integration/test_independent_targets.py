"""Storage targets are independent: a second target that fails (an S3 target whose bucket does not
exist yet on a real moto server) never costs the first its committed copy, and once it is fixed the
retry fills it. Real PostgreSQL, moto over HTTP, a local directory store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from drflow.devtools.sandbox.s3 import create_buckets
from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.lsn import parse_lsn
from drflow.jobs.backup import FullBackupRequest, take_full_backup
from drflow.jobs.logical import LogicalBackupRequest, take_logical_backup
from drflow.jobs.rpo import component_compliance
from drflow.jobs.wal import WalArchiveRequest, archive_wal, default_slot
from drflow.store.factory import target_catalogs
from drflow.store.fanout import TargetsFailedError
from drflow.store.manifest import BackupManifest
from tests.fixtures.backups import full_backup_request
from tests.fixtures.s3 import S3_TEST_PREFIX, S3_TEST_REGION, MotoServer, drop_bucket
from tests.plan_inputs import postgres_component, rpo_component, spec_head

pytestmark = pytest.mark.slow

SPEC = "test-spec"


@dataclass
class BrokenTarget:
    """An S3 target whose bucket does not exist until fix() creates it."""

    server: MotoServer
    target: dict[str, Any]
    fixed: bool = False

    def fix(self) -> None:
        create_buckets(self.server.endpoint_url, [self.target["bucket"]], self.server.region)
        self.fixed = True


@pytest.fixture
def broken_s3(moto_server: MotoServer, s3_conn_id: str) -> Iterator[BrokenTarget]:
    bucket = f"drflow-missing-{uuid.uuid4().hex[:12]}"
    target = {
        "name": "s3-second",
        "type": "s3",
        "bucket": bucket,
        "conn_id": s3_conn_id,
        "region": S3_TEST_REGION,
        "prefix": S3_TEST_PREFIX,
    }
    broken = BrokenTarget(moto_server, target)
    yield broken
    if broken.fixed:
        drop_bucket(moto_server, bucket)


def _entries(targets: list[dict[str, Any]], component: str) -> dict[str, list[BackupManifest]]:
    return {name: catalog.list_backups(component) for name, catalog in target_catalogs(SPEC, targets)}


def _full(cluster: LocalCluster, targets: list[dict[str, Any]], backup_id: str) -> FullBackupRequest:
    return full_backup_request(cluster, targets, backup_id, spec_name=SPEC)


def _seed(cluster: LocalCluster) -> None:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute("create table if not exists t (id int)")
        conn.execute("insert into t select generate_series(1, 1000)")


def test_full_backup_keeps_the_healthy_copy_across_retries_and_fills_the_fixed_target(
    pg_primary: LocalCluster, local_target: dict[str, Any], broken_s3: BrokenTarget
) -> None:
    _seed(pg_primary)
    targets = [local_target, broken_s3.target]
    backup_id = "20261127T000000Z-daily-full-indep1"

    with pytest.raises(TargetsFailedError) as first:
        take_full_backup(_full(pg_primary, targets, backup_id))
    assert "s3-second" in str(first.value) and "does not exist" in str(first.value)
    assert first.value.committed == ["test-local"] and list(first.value.failed) == ["s3-second"]
    [committed] = _entries([local_target], "users")["test-local"]
    # A backup present in one target counts for RPO compliance; the failed target is a reported problem.
    component = postgres_component("users", "users", pg_primary.bin_dir, targets, rpo="1h")
    facts = rpo_component({**spec_head(SPEC, targets), "components": [component]}, "users")
    report = component_compliance(SPEC, facts, datetime.now(UTC))
    assert report["compliant"] and report["best_source"] == "backup:test-local"
    assert [p.split(":")[0] for p in report["problems"]] == ["s3-second"]

    with pytest.raises(TargetsFailedError, match="s3-second"):  # the target is still broken
        take_full_backup(_full(pg_primary, targets, backup_id))
    assert _entries([local_target], "users")["test-local"] == [committed]

    broken_s3.fix()
    filled = take_full_backup(_full(pg_primary, targets, backup_id))
    assert filled == committed  # copied, not taken again: the same backup in both targets
    entries = _entries(targets, "users")
    assert entries == {"test-local": [committed], "s3-second": [committed]}
    for _, catalog in target_catalogs(SPEC, targets):
        assert catalog.verify(committed) == []

    assert take_full_backup(_full(pg_primary, targets, backup_id)) == committed
    assert _entries(targets, "users") == entries


def test_no_reachable_target_fails_before_the_backup_is_taken(
    pg_primary: LocalCluster, broken_s3: BrokenTarget
) -> None:
    with pytest.raises(TargetsFailedError, match="stored in no target") as refused:
        take_full_backup(_full(pg_primary, [broken_s3.target], "20261127T000000Z-daily-full-indep2"))
    assert str(refused.value).count("\n") <= 3, "one line per distinct problem"
    with psycopg.connect(**pg_primary.conninfo().libpq_kwargs()) as conn:
        row = conn.execute("select count(*) from pg_stat_progress_basebackup").fetchone()
    assert row == (0,)


def test_logical_backup_is_independent_per_target(
    pg_primary: LocalCluster, local_target: dict[str, Any], broken_s3: BrokenTarget
) -> None:
    _seed(pg_primary)
    targets = [local_target, broken_s3.target]

    def dump() -> BackupManifest:
        return take_logical_backup(
            LogicalBackupRequest(
                spec_name=SPEC,
                component="users",
                policy="nightly-dump",
                backup_id="d-indep",
                conn=pg_primary.conninfo(),
                bin_dir=pg_primary.bin_dir,
                targets=targets,
                compression="zstd",
                retention_days=7,
                retention_policy="standard",
            )
        )

    with pytest.raises(TargetsFailedError, match="s3-second"):
        dump()
    [committed] = _entries([local_target], "users")["test-local"]
    with pytest.raises(TargetsFailedError):
        dump()
    assert _entries([local_target], "users")["test-local"] == [committed]
    broken_s3.fix()
    assert dump() == committed
    assert _entries(targets, "users") == {"test-local": [committed], "s3-second": [committed]}


def _slot_lsn(cluster: LocalCluster, slot: str) -> int:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs()) as conn:
        query = "select restart_lsn::text from pg_replication_slots where slot_name = %s"
        row = conn.execute(query, (slot,)).fetchone()
    assert row is not None
    return parse_lsn(row[0])


def test_wal_is_independent_per_target_and_the_slot_waits_for_the_failed_target(
    pg_primary: LocalCluster, local_target: dict[str, Any], broken_s3: BrokenTarget
) -> None:
    _seed(pg_primary)
    targets = [local_target, broken_s3.target]
    broken_s3.fix()
    take_full_backup(_full(pg_primary, targets, "20261127T000000Z-daily-full-walbase"))
    # The second target goes away (its bucket is dropped) after the full backup reached it.
    drop_bucket(broken_s3.server, broken_s3.target["bucket"])
    broken_s3.fixed = False
    slot = default_slot("users")

    def wal(backup_id: str) -> BackupManifest:
        return archive_wal(
            WalArchiveRequest(
                spec_name=SPEC,
                component="users",
                policy="wal",
                backup_id=backup_id,
                conn=pg_primary.conninfo(),
                bin_dir=pg_primary.bin_dir,
                targets=targets,
                slot=slot,
                retention_days=7,
                timeout_s=60,
            )
        )

    _seed(pg_primary)
    with pytest.raises(TargetsFailedError, match="s3-second"):
        wal("w1")
    [entry] = [m for m in _entries([local_target], "users")["test-local"] if m.backup_id == "w1"]
    held = _slot_lsn(pg_primary, slot)
    assert held < parse_lsn(entry.end_lsn or "0/0"), "the slot must keep the WAL the failed target misses"

    _seed(pg_primary)
    with pytest.raises(TargetsFailedError):
        wal("w2")  # a later run while the target is still down: stored locally, slot still held
    assert _slot_lsn(pg_primary, slot) == held

    broken_s3.fix()  # the bucket is back, but empty: the full backup must come back first
    take_full_backup(_full(pg_primary, targets, "20261127T000000Z-daily-full-walbase"))
    assert wal("w1") == entry  # the retry of w1 copies the stored entry
    _seed(pg_primary)
    w3 = wal("w3")
    assert _slot_lsn(pg_primary, slot) >= parse_lsn(w3.end_lsn or "0/0") - 16 * 1024 * 1024
    names = {name: [m.backup_id for m in ms] for name, ms in _entries(targets, "users").items()}
    assert names["test-local"].count("w1") == 1 and names["s3-second"].count("w1") == 1
    assert "w3" in names["s3-second"]
