"""WAL archiving and point-in-time recovery with real PostgreSQL and a local store.

One primary (track_commit_timestamp on, so every row's real commit time is known) takes a
continuous write load while a full backup and three WAL archive runs go into the store. Tests that
change the store work on a copy of it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from drflow.cli import app
from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.lsn import parse_lsn
from drflow.hosts import Host
from drflow.jobs.backup import FullBackupRequest, take_full_backup
from drflow.jobs.pitr import plan_point_in_time, restore_to_point
from drflow.jobs.wal import WalArchiveRequest, archive_wal, default_slot
from drflow.store.catalog import Catalog
from drflow.store.factory import target_catalogs
from drflow.store.manifest import BackupManifest
from drflow.store.wal import (
    ALERT_BROKEN,
    ALERT_STOPPED,
    WalGapError,
    check_wal_chain,
    recoverable_range,
    recoverable_ranges,
    recovery_point,
    wal_archive_status,
)
from tests.fixtures.backups import full_backup_request
from tests.fixtures.pg import create_database, pg_workdir_context, running_cluster

pytestmark = pytest.mark.slow

SPEC = "test-spec"
COMPONENT = "users"


@dataclass
class Scenario:
    primary: LocalCluster
    workdir: Path
    target: dict[str, Any]
    full: BackupManifest
    wal: list[BackupManifest]
    commits: list[tuple[int, datetime]]
    """(row id, commit timestamp) of every row, in commit order."""

    @property
    def catalog(self) -> Catalog:
        return Catalog(target_catalogs(SPEC, [self.target])[0][1].store, SPEC)

    def copy_target(self, where: Path) -> dict[str, Any]:
        shutil.copytree(self.target["path"], where)
        return {**self.target, "name": "copy", "path": str(where)}


def full_request(cluster: LocalCluster, targets: list[dict[str, Any]], backup_id: str) -> FullBackupRequest:
    return full_backup_request(cluster, targets, backup_id, database=COMPONENT, spec_name=SPEC, component=COMPONENT)


def wal_request(cluster: LocalCluster, targets: list[dict[str, Any]], backup_id: str) -> WalArchiveRequest:
    return WalArchiveRequest(
        spec_name=SPEC,
        component=COMPONENT,
        policy="wal",
        backup_id=backup_id,
        conn=cluster.conninfo(COMPONENT),
        bin_dir=cluster.bin_dir,
        targets=targets,
        slot=default_slot(COMPONENT),
        retention_days=7,
        timeout_s=60,
    )


def _create_users_db(cluster: LocalCluster) -> None:
    create_database(cluster, COMPONENT, "create table events (id bigserial primary key, note text not null)")


class Writer(threading.Thread):
    """One small insert per transaction, a few hundred a second, until stopped."""

    def __init__(self, conn: PgConnInfo) -> None:
        super().__init__(daemon=True)
        self.conn = conn
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(**self.conn.libpq_kwargs(), autocommit=True) as db:
                while not self.halt.is_set():
                    db.execute("insert into events (note) values ('row')")
                    time.sleep(0.003)
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def stop(self) -> None:
        self.halt.set()
        self.join(10)
        assert self.error is None, self.error


@pytest.fixture(scope="module")
def scenario(pg_host: Host, pg_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    store = tmp_path_factory.mktemp("wal-store") / "store"
    target = {"name": "local", "type": "local", "path": str(store)}
    with (
        pg_workdir_context(pg_host, pg_bin_dir) as workdir,
        running_cluster(workdir, "primary", pg_host, pg_bin_dir) as primary,
    ):
        primary.configure(track_commit_timestamp=True)
        primary.stop()
        primary.start()
        _create_users_db(primary)
        writer = Writer(primary.conninfo(COMPONENT))
        writer.start()
        try:
            time.sleep(0.3)
            full = take_full_backup(full_request(primary, [target], "20261127T100000Z-daily-full-aaaaaa"))
            wal = []
            for n in range(2):
                time.sleep(0.6)
                wal.append(archive_wal(wal_request(primary, [target], f"20261127T10{n + 1}000Z-wal-aaaaaa")))
        finally:
            writer.stop()
        wal.append(archive_wal(wal_request(primary, [target], "20261127T103000Z-wal-aaaaaa")))
        with psycopg.connect(**primary.conninfo(COMPONENT).libpq_kwargs()) as db:
            rows = db.execute("select id, pg_xact_commit_timestamp(xmin) from events order by 2, 1").fetchall()
        yield Scenario(primary, workdir, target, full, wal, [(int(i), ts) for i, ts in rows])


def _restored_ids(port: int) -> set[int]:
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=COMPONENT) as db:
        return {int(row[0]) for row in db.execute("select id from events")}


def test_the_wal_runs_chain_from_the_full_backup_without_a_gap(scenario: Scenario) -> None:
    full, wal = scenario.full, scenario.wal
    assert [m.parent_id for m in wal] == [full.backup_id, wal[0].backup_id, wal[1].backup_id]
    assert parse_lsn(wal[0].start_lsn or "") <= parse_lsn(full.end_lsn or "")
    for before, after in zip(wal, wal[1:], strict=False):
        assert after.start_lsn == before.end_lsn
    assert all(m.backup_type == "incremental" and m.method == "pg_receivewal" for m in wal)
    assert all(o.name.endswith(".zst") for m in wal for o in m.objects)
    report = check_wal_chain(scenario.catalog, COMPONENT)
    assert report["warnings"] == [] and report["coverage"] == [(wal[0].start_lsn, wal[-1].end_lsn)]
    with psycopg.connect(**scenario.primary.conninfo().libpq_kwargs()) as db:
        row = db.execute(
            "select restart_lsn::text from pg_replication_slots where slot_name = %s", (default_slot(COMPONENT),)
        ).fetchone()
    assert row is not None and row[0] == wal[-1].end_lsn  # the slot moved only up to what is stored


def test_recovery_to_a_time_between_two_commits_restores_exactly_the_rows_committed_before_it(
    scenario: Scenario, pg_host: Host
) -> None:
    first, second = (recovery_point(m) for m in scenario.wal[:2])
    assert first is not None and second is not None
    # Consecutive commits after the first WAL run's recovery point: replaying them needs two WAL entries.
    pairs = [
        (a, b)
        for a, b in zip(scenario.commits, scenario.commits[1:], strict=False)
        if first.time < a[1] and b[1] < second.time and b[1] - a[1] > timedelta(microseconds=2)
    ]
    assert len(pairs) > 20, "the writer should have committed continuously between the two WAL runs"
    (last_id, last_commit), (next_id, next_commit) = pairs[len(pairs) // 2]
    target = last_commit + (next_commit - last_commit) / 2

    plan = plan_point_in_time(scenario.catalog, COMPONENT, target)
    assert plan.base.backup_id == scenario.full.backup_id
    assert [m.backup_id for m in plan.wal] == [m.backup_id for m in scenario.wal[:2]]
    data_dir = scenario.workdir / "pitr-time"
    result = restore_to_point(scenario.catalog, plan, data_dir, host=pg_host, bin_dir=scenario.primary.bin_dir)
    assert result.port is not None
    try:
        restored = _restored_ids(result.port)
    finally:
        LocalCluster(data_dir, result.port, data_dir.parent / "socket", scenario.primary.bin_dir, pg_host).stop()
    expected = {row_id for row_id, committed in scenario.commits if committed <= target}
    assert last_id in restored and next_id not in restored
    assert restored == expected
    assert result.last_replayed_commit is not None
    assert datetime.fromisoformat(result.last_replayed_commit) <= target
    assert not (data_dir / "drflow_restore_wal").exists()
    settings = (data_dir / "postgresql.auto.conf").read_text()
    assert "recovery_target_time" not in settings and "restore_command" not in settings
    assert "recovery_init_sync_method" not in settings  # the first start's sync setting is not left behind
    # The compressed segments were staged as stored and decompressed one at a time by restore_command.
    log = (data_dir.parent / "socket" / f"postgres-{result.port}.log").read_text()
    assert "restored log file" in log and "zstd:" not in log


def test_targets_the_store_cannot_reach_are_refused_with_the_range_and_nothing_is_touched(
    scenario: Scenario, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nmetadata: {{name: {SPEC}, owner: ops}}\nregions: [{{name: here, role: primary}}]\n"
        f"storage: [{{name: local, type: local, path: {scenario.target['path']}}}]\n"
        "components:\n  - name: users\n    criticality: high\n    rto: 1h\n    rpo: 5m\n"
        "    datastore: {type: postgres, database: users, bin_dir: "
        f"{scenario.primary.bin_dir}, primary: {{conn_id: pg, region: here}}}}\n"
        "    backups: [{preset: database, targets: [local], retention: {days: 7}}]\n"
    )
    span = recoverable_range(scenario.catalog, COMPONENT)
    assert span is not None
    empty = scenario.workdir / "stays-empty"
    empty.mkdir()
    missing = scenario.workdir / "never-created"
    runner = CliRunner()
    beyond = span.end.time + timedelta(seconds=1)
    # Past the range but not in the future (which the CLI refuses first, for another reason).
    time.sleep(max(0.0, (beyond - datetime.now(UTC)).total_seconds() + 1.0))
    for target in (scenario.full.finished_at - timedelta(hours=1), beyond):
        for dest in (empty, missing):
            args = ["restore", "--spec", str(spec), "--component", COMPONENT, "--to", str(dest)]
            result = runner.invoke(app, [*args, "--target-time", target.isoformat()])
            assert result.exit_code == 1, result.output
            output = " ".join(result.output.split())
            assert f"it is recoverable {span.describe()}; choose a target in that range" in output
            assert "nothing was changed" in output
    assert list(empty.iterdir()) == [] and not missing.exists()
    too_far = f"{parse_lsn(scenario.wal[-1].end_lsn or '') >> 32:X}/FFFFFFFF"
    result = runner.invoke(app, [*args, "--target-lsn", too_far])
    assert result.exit_code == 1 and "choose a target in that range" in " ".join(result.output.split())
    result = runner.invoke(app, [*args, "--target-time", "2026-11-27T10:30:00"])
    assert result.exit_code == 1 and "has no timezone" in result.output
    result = runner.invoke(app, [*args, "--target-time", "2026-11-27T10:30:00Z", "--target-lsn", "0/1"])
    assert result.exit_code == 1 and "not both" in result.output
    assert not missing.exists()


def test_a_missing_middle_entry_is_reported_as_a_gap(scenario: Scenario, tmp_path: Path) -> None:
    target = scenario.copy_target(tmp_path / "store")
    [(_, catalog)] = target_catalogs(SPEC, [target])
    first, middle, last = scenario.wal
    catalog.discard(COMPONENT, middle.backup_id)
    with pytest.raises(WalGapError) as gap:
        check_wal_chain(catalog, COMPONENT)
    assert (gap.value.before, gap.value.after) == (first.backup_id, last.backup_id)
    assert (gap.value.missing_from, gap.value.missing_to) == (middle.start_lsn, middle.end_lsn)
    assert "Take a new full backup" in str(gap.value)
    status = wal_archive_status(catalog, COMPONENT, datetime.now(UTC), 3600, 300)
    assert ALERT_BROKEN in [a["code"] for a in status["alerts"]]
    [span] = recoverable_ranges(catalog, COMPONENT)  # only up to the gap
    assert span.end == recovery_point(first)


def test_a_retried_archive_run_leaves_one_entry_and_loses_no_wal(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = scenario.copy_target(tmp_path / "store")
    [(_, catalog)] = target_catalogs(SPEC, [target])
    last = scenario.wal[-1]
    again = archive_wal(wal_request(scenario.primary, [target], last.backup_id))
    assert again == last and len(catalog.list_backups(COMPONENT)) == 4

    backup_id = "20261127T104000Z-wal-bbbbbb"
    original_commit = Catalog.commit

    def crash_before_the_manifest(self: Catalog, manifest: BackupManifest) -> str:
        raise OSError("worker lost right before the manifest was written")

    monkeypatch.setattr(Catalog, "commit", crash_before_the_manifest)
    with pytest.raises(OSError, match="worker lost"):
        archive_wal(wal_request(scenario.primary, [target], backup_id))
    monkeypatch.setattr(Catalog, "commit", original_commit)
    assert len(catalog.list_backups(COMPONENT)) == 4
    assert catalog.store.list_keys(catalog.prefix_for(COMPONENT, backup_id))  # segments left by the try
    with psycopg.connect(**scenario.primary.conninfo().libpq_kwargs()) as db:
        row = db.execute(
            "select restart_lsn from pg_replication_slots where slot_name = %s", (default_slot(COMPONENT),)
        ).fetchone()
    assert row is not None and parse_lsn(str(row[0])) <= parse_lsn(last.end_lsn or "")

    retried = archive_wal(wal_request(scenario.primary, [target], backup_id))
    assert retried.parent_id == last.backup_id and retried.start_lsn == last.end_lsn
    stored = {k.rsplit("/", 1)[1] for k in catalog.store.list_keys(catalog.prefix_for(COMPONENT, backup_id))}
    assert stored == {o.name for o in retried.objects} | {"manifest.json"}
    assert [m.backup_id for m in catalog.list_backups(COMPONENT)][-1] == backup_id
    assert check_wal_chain(catalog, COMPONENT)["warnings"] == []


def test_stopped_wal_collection_raises_its_own_alert_within_one_check_interval(
    scenario: Scenario, tmp_path: Path
) -> None:
    target = scenario.copy_target(tmp_path / "store")
    [(_, catalog)] = target_catalogs(SPEC, [target])
    interval = 2.0
    newest = archive_wal(wal_request(scenario.primary, [target], "20261127T105000Z-wal-cccccc"))
    status = wal_archive_status(catalog, COMPONENT, datetime.now(UTC), interval, rpo_s=300)
    assert status["healthy"], status["alerts"]
    assert status["newest_entry"] == newest.backup_id
    # Collection now stops: a check every `interval` seconds must see it within one interval of the grace.
    while True:
        time.sleep(interval / 4)
        now = datetime.now(UTC)
        status = wal_archive_status(catalog, COMPONENT, now, interval, rpo_s=300)
        if not status["healthy"]:
            break
        assert now - newest.finished_at < timedelta(seconds=interval * 1.5 + interval)
    silent = (now - newest.finished_at).total_seconds()
    assert interval * 1.5 < silent < interval * 1.5 + interval
    assert [a["code"] for a in status["alerts"]] == [ALERT_STOPPED]
    assert "WAL collection of users stopped" in status["alerts"][0]["message"]


def test_wal_recycled_before_it_was_stored_is_a_gap_until_a_new_full_backup(
    pg_primary: LocalCluster, tmp_path: Path
) -> None:
    target = {"name": "local", "type": "local", "path": str(tmp_path / "store")}
    _create_users_db(pg_primary)
    take_full_backup(full_request(pg_primary, [target], "20261127T100000Z-daily-full-dddddd"))
    first = archive_wal(wal_request(pg_primary, [target], "20261127T101000Z-wal-dddddd"))
    with psycopg.connect(**pg_primary.conninfo().libpq_kwargs(), autocommit=True) as db:
        db.execute("select pg_drop_replication_slot(%s)", (default_slot(COMPONENT),))
        db.execute("alter system set wal_keep_size = 0")
        db.execute("select pg_reload_conf()")
        for _ in range(3):
            db.execute("create table if not exists churn (n int)")
            db.execute("insert into churn values (1)")
            db.execute("select pg_switch_wal()")
            db.execute("checkpoint")

    with pytest.raises(WalGapError) as gap:
        archive_wal(wal_request(pg_primary, [target], "20261127T102000Z-wal-dddddd"))
    message = str(gap.value)
    assert f"after {first.backup_id} (from LSN {first.end_lsn})" in message
    assert "has already been removed" in message and "Take a new full backup now" in message
    [(_, catalog)] = target_catalogs(SPEC, [target])
    assert [m.backup_id for m in catalog.list_backups(COMPONENT)][-1] == first.backup_id  # nothing stored

    restart = take_full_backup(full_request(pg_primary, [target], "20261127T103000Z-daily-full-dddddd"))
    resumed = archive_wal(wal_request(pg_primary, [target], "20261127T104000Z-wal-dddddd"))
    assert resumed.parent_id == restart.backup_id
    assert resumed.extra["restarted_after_gap"]["missing_from"] == first.end_lsn
    report = check_wal_chain(catalog, COMPONENT)
    assert len(report["warnings"]) == 1 and restart.backup_id in report["warnings"][0]
    before_gap, after_gap = recoverable_ranges(catalog, COMPONENT)
    assert before_gap.bases[0].backup_id == "20261127T100000Z-daily-full-dddddd"
    assert after_gap.bases[0].backup_id == restart.backup_id


def test_point_in_time_restore_falls_back_to_the_intact_copy_in_the_second_target(
    scenario: Scenario, tmp_path: Path
) -> None:
    first = {**scenario.copy_target(tmp_path / "first"), "name": "first"}
    second = {**scenario.copy_target(tmp_path / "second"), "name": "second"}
    [(_, catalog)] = target_catalogs(SPEC, [first])
    entry = scenario.wal[0]
    key = catalog.object_key(COMPONENT, entry.backup_id, entry.objects[0].name)
    data = catalog.store.get_bytes(key)
    catalog.store.put_bytes(key, data[:50] + bytes([data[50] ^ 0xFF]) + data[51:])
    span = recoverable_range(scenario.catalog, COMPONENT)
    assert span is not None
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nmetadata: {{name: {SPEC}, owner: ops}}\nregions: [{{name: here, role: primary}}]\n"
        f"storage: [{{name: first, type: local, path: {first['path']}}}, "
        f"{{name: second, type: local, path: {second['path']}}}]\n"
        "components:\n  - name: users\n    criticality: high\n    rto: 1h\n    rpo: 5m\n"
        "    datastore: {type: postgres, database: users, bin_dir: "
        f"{scenario.primary.bin_dir}, primary: {{conn_id: pg, region: here}}}}\n"
        "    backups: [{preset: database, targets: [first, second], retention: {days: 7}}]\n"
    )
    dest = scenario.workdir / "pitr-fallback"
    args = ["restore", "--spec", str(spec), "--component", COMPONENT, "--to", str(dest)]
    result = CliRunner().invoke(app, [*args, "--target-time", span.end.time.isoformat()])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f"skipped the copy of backup {scenario.full.backup_id} and its WAL in first: object" in output
    assert "is corrupt" in output
    assert f"recovered {COMPONENT} from second to time" in output
    assert "the server was stopped cleanly" in output
