"""`drflow restore --at T` killed during WAL replay: the directory stays marked incomplete (never looks like a
finished restore), the rerun names it and the server the killed run left replaying, and `--clean-incomplete`
stops that server, empties the directory and recovers to the target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.incomplete import MARKER, server_pid
from drflow.hosts import Host
from drflow.jobs.backup import FullBackupRequest, take_full_backup
from drflow.jobs.restore import start_scratch_instance
from drflow.jobs.wal import WalArchiveRequest, archive_wal, default_slot
from tests.fixtures.procs import pids_with_arg

pytestmark = pytest.mark.slow

DRFLOW = Path(sys.executable).with_name("drflow")
FULL_ID = "20261127T000000Z-daily-full-pppppp"
# Rows loaded between the full backup and the target, 100,000 per transaction: 2,000,000 rows make about 20
# WAL segments, whose replay took 3–6 s here (load 3–6 on two cores) — seconds in which the kill lands.
ROWS = 2_000_000
KILL_AT_SEGMENT = 8
FINGERPRINT = "select count(*), md5(string_agg(id::text || note, ',' order by id)) from events"


def _common(cluster: LocalCluster, store: Path) -> dict[str, Any]:
    return {
        "spec_name": "test-spec",
        "component": "users",
        "conn": cluster.conninfo(),
        "bin_dir": cluster.bin_dir,
        "targets": [{"name": "local", "type": "local", "path": str(store)}],
        "retention_days": 7,
    }


def _archive(cluster: LocalCluster, store: Path, backup_id: str) -> None:
    common = _common(cluster, store)
    archive_wal(WalArchiveRequest(policy="wal", backup_id=backup_id, slot=default_slot("users"), **common))


def _store_backup_and_wal(cluster: LocalCluster, store: Path) -> tuple[datetime, tuple[Any, ...]]:
    """A full backup, then ROWS rows in WAL up to the target time, one row after it; the target and the
    fingerprint of the table at the target."""
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as db:
        db.execute("create table events (id bigint primary key, note text not null)")
    common = _common(cluster, store)
    take_full_backup(FullBackupRequest(policy="daily-full", backup_id=FULL_ID, validation=[], **common))
    _archive(cluster, store, "20261127T001000Z-wal-pppppp")
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as db:
        for first in range(1, ROWS + 1, 100_000):
            db.execute(
                "insert into events select n, md5(n::text) from generate_series(%s, %s) n", (first, first + 99_999)
            )
        row = db.execute(FINGERPRINT).fetchone()
        time.sleep(0.2)
        target = datetime.now(UTC)
        time.sleep(0.2)
        db.execute("insert into events values (0, 'after the target')")
    _archive(cluster, store, "20261127T002000Z-wal-pppppp")
    assert row is not None
    return target, tuple(row)


def _spec(path: Path, store: Path, bin_dir: Path) -> Path:
    path.write_text(
        "version: 1\nmetadata: {name: test-spec, owner: ops}\nregions: [{name: here, role: primary}]\n"
        f"storage: [{{name: local, type: local, path: {store}}}]\n"
        "components:\n  - name: users\n    criticality: high\n    rto: 1h\n    rpo: 1d\n"
        f"    datastore: {{type: postgres, database: postgres, bin_dir: {bin_dir}, "
        "primary: {conn_id: pg, region: here}}\n"
        "    backups: [{preset: database, targets: [local], retention: {days: 7}}]\n"
    )
    return path


def _replaying(data_dir: Path) -> int | None:
    """The number of the WAL segment the startup process of the server in ``data_dir`` is replaying, if it is."""
    servers = set(pids_with_arg(str(data_dir)))
    for pid in pids_with_arg("startup recovering"):
        try:
            parent = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
            title = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, ValueError, IndexError):
            continue
        if parent in servers:
            return int(title.rsplit(" ", 1)[-1][-8:], 16)
    return None


def _in_recovery(data_dir: Path) -> bool:
    """Whether the server in ``data_dir`` (its port from postmaster.pid) is still in recovery."""
    port = int((data_dir / "postmaster.pid").read_text().splitlines()[3])
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", connect_timeout=5) as db:
        row = db.execute("select pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def test_a_restore_killed_during_wal_replay_is_named_incomplete_and_cleaned_on_request(
    pg_primary: LocalCluster, pg_workdir: Path, pg_host: Host, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    target, fingerprint = _store_backup_and_wal(pg_primary, store)
    spec = _spec(tmp_path / "spec.yaml", store, pg_primary.bin_dir)
    dest = pg_workdir / "restored"
    env = {**os.environ, "DRFLOW_WORK_DIR": str(tmp_path / "work")}
    argv = [str(DRFLOW), "restore", "--spec", str(spec), "--component", "users", "--to", str(dest)]
    argv += ["--at", target.isoformat()]

    drflow = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    segment = None
    try:
        deadline = time.monotonic() + 300
        # Past the base backup's own WAL (segments 2–3): replaying the archived WAL, about a third of it.
        while (segment or 0) < KILL_AT_SEGMENT and drflow.poll() is None and time.monotonic() < deadline:
            segment = _replaying(dest)
            time.sleep(0.005)
        assert segment is not None and segment >= KILL_AT_SEGMENT, "never saw the server replay archived WAL"
        drflow.send_signal(signal.SIGKILL)
        drflow.wait(10)
        killed_at = time.monotonic()
    finally:
        drflow.kill()
    assert (dest / MARKER).exists(), "a restore killed during replay must stay marked incomplete"
    server = server_pid(dest)
    assert server is not None, "the server the killed run started replays on in its own session"
    # Left alone, it replays to the target and promotes: without the marker the directory would look finished.
    while _in_recovery(dest) and time.monotonic() - killed_at < 120:
        time.sleep(0.1)
    print(f"killed drflow at segment {segment:X}; the server promoted {time.monotonic() - killed_at:.1f}s later")
    assert not _in_recovery(dest)

    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    message = " ".join((rerun.stdout + rerun.stderr).split())
    assert rerun.returncode == 1, message
    assert f"{dest} holds an INCOMPLETE restore (backup {FULL_ID} recovered to time " in message
    assert f"A PostgreSQL server it started still runs there (pid {server}); --clean-incomplete stops it" in message
    assert "Rerun `drflow restore` with --clean-incomplete" in message
    assert "Traceback" not in message

    cleaned = subprocess.run([*argv, "--clean-incomplete"], env=env, capture_output=True, text=True, timeout=600)
    output = " ".join((cleaned.stdout + cleaned.stderr).split())
    assert cleaned.returncode == 0, output
    assert f"removed the incomplete restore in {dest}" in output
    assert f"recovered users from local to time {target.isoformat()}" in output
    print(output)
    assert not Path(f"/proc/{server}").exists(), "the killed run's server was stopped"
    assert not (dest / MARKER).exists()

    instance = start_scratch_instance(dest, host=pg_host, bin_dir=pg_primary.bin_dir)
    try:
        with psycopg.connect(**instance.conninfo().libpq_kwargs()) as conn:
            row = conn.execute(FINGERPRINT).fetchone()
        assert row is not None and tuple(row) == fingerprint
    finally:
        instance.stop(mode="immediate")
