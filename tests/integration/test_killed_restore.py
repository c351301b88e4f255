"""`drflow restore` killed mid-extraction: no child survives, the directory is named incomplete,
`--clean-incomplete` restores cleanly, and the killed run's scratch directory goes away."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.incomplete import MARKER
from drflow.hosts import Host
from drflow.jobs.backup import take_full_backup
from drflow.jobs.restore import start_scratch_instance
from tests.fixtures.backups import full_backup_request
from tests.fixtures.procs import command_name, pids_in_group, pids_with_arg, process_group, wait_until_gone

pytestmark = pytest.mark.slow

FINGERPRINT = "select count(*), md5(string_agg(id::text || payload, ',' order by id)) from items"
DRFLOW = Path(sys.executable).with_name("drflow")


def _seed(cluster: LocalCluster) -> tuple[Any, ...]:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute("create table items (id bigint primary key, payload text not null)")
        # Random text compresses poorly: a base backup whose extraction takes a moment.
        conn.execute(
            "insert into items select n, md5(random()::text) || md5(random()::text) || md5(random()::text) "
            "from generate_series(1, 600000) n"
        )
        row = conn.execute(FINGERPRINT).fetchone()
    assert row is not None
    return tuple(row)


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


def test_killed_restore_leaves_no_child_and_is_cleaned_on_request(
    pg_primary: LocalCluster, pg_workdir: Path, pg_host: Host, tmp_path: Path
) -> None:
    fingerprint = _seed(pg_primary)
    store = tmp_path / "store"
    take_full_backup(
        full_backup_request(
            pg_primary, [{"name": "local", "type": "local", "path": str(store)}], "20261127T000000Z-daily-full-kkkkkk"
        )
    )
    spec = _spec(tmp_path / "spec.yaml", store, pg_primary.bin_dir)
    dest = pg_workdir / "restored"
    work = tmp_path / "work"
    env = {**os.environ, "DRFLOW_WORK_DIR": str(work)}
    argv = [str(DRFLOW), "restore", "--spec", str(spec), "--component", "users", "--to", str(dest)]

    drflow = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tar_group = None
    try:
        deadline = time.monotonic() + 120
        while tar_group is None and drflow.poll() is None and time.monotonic() < deadline:
            for pid in pids_with_arg(str(dest)):
                if command_name(pid) == "tar":
                    tar_group = process_group(pid)
                    break
            else:
                time.sleep(0.005)
        assert tar_group is not None, "never saw tar extracting; the backup is too small to catch it"
        drflow.send_signal(signal.SIGKILL)
        drflow.wait(10)
    finally:
        drflow.kill()
    # Nothing drflow started lives on: not tar, not the zstd tar started, nothing in their group. They
    # die with drflow, not when the extraction would have ended (that takes seconds more).
    killed_at = time.monotonic()
    assert wait_until_gone(str(dest), timeout=0.5) == []
    print(f"tar gone {time.monotonic() - killed_at:.3f}s after the kill")
    deadline = time.monotonic() + 10
    while pids_in_group(tar_group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids_in_group(tar_group) == []
    assert (dest / MARKER).exists()
    leftovers = [p.name for p in work.iterdir() if p.name.startswith("restore-")]
    assert leftovers, "the killed run's scratch directory should still be there"

    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    message = " ".join((rerun.stdout + rerun.stderr).split())
    assert rerun.returncode == 1, message
    assert f"{dest} holds an INCOMPLETE restore (backup 20261127T000000Z-daily-full-kkkkkk" in message
    assert "Rerun `drflow restore` with --clean-incomplete" in message
    assert "Traceback" not in message

    cleaned = subprocess.run([*argv, "--clean-incomplete"], env=env, capture_output=True, text=True, timeout=300)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert f"removed the incomplete restore in {dest}" in " ".join(cleaned.stderr.split())
    assert not (dest / MARKER).exists()
    assert [p.name for p in work.iterdir() if p.name.startswith("restore-")] == []  # swept by the next run

    instance = start_scratch_instance(dest, host=pg_host, bin_dir=pg_primary.bin_dir)
    try:
        with psycopg.connect(**instance.conninfo().libpq_kwargs()) as conn:
            row = conn.execute(FINGERPRINT).fetchone()
        assert row is not None and tuple(row) == fingerprint
    finally:
        instance.stop(mode="immediate")
    shutil.rmtree(work, ignore_errors=True)
