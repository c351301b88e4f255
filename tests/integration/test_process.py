"""The one subprocess runner: children die with drflow, timeouts stop the whole group."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from drflow import process
from drflow.engines.postgres.basebackup import BackupError
from drflow.engines.postgres.cluster import LocalCluster
from drflow.hosts import HostError, LocalHost
from drflow.jobs.backup import take_full_backup
from tests.fixtures.backups import full_backup_request
from tests.fixtures.procs import pids_with_arg, wait_until_gone


def _marker() -> str:
    # sleep accepts a fractional number: a unique one names our processes in /proc.
    return f"3600.{uuid.uuid4().int % 10**9:09d}"


def test_child_dies_when_drflow_is_killed() -> None:
    marker = _marker()
    code = "import os; from drflow import process; process.run(['sleep', os.environ['MARK']], timeout=None)"
    # The marker travels in the environment: only the child's argv carries it.
    parent = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "MARK": marker})
    try:
        deadline = time.monotonic() + 20
        while not pids_with_arg(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pids_with_arg(marker), "the child never started"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert wait_until_gone(marker) == []
    finally:
        parent.kill()
        for pid in pids_with_arg(marker):
            os.kill(pid, signal.SIGKILL)


def test_timeout_stops_the_whole_group() -> None:
    marker = _marker()
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        # The shell's background child is a grandchild: only a group kill reaches it.
        process.run(["sh", "-c", f"sleep {marker} & echo started; sleep {marker}"], timeout=1)
    assert time.monotonic() - started < 8
    assert "started" in str(caught.value.stdout)
    assert wait_until_gone(marker, timeout=5) == []


def test_exception_in_drflow_stops_the_child() -> None:
    marker = _marker()

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            process.run(["sleep", marker], timeout=60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert wait_until_gone(marker, timeout=5) == []


def test_host_timeout_names_the_command() -> None:
    with pytest.raises(HostError, match=r"timed out after 1s: sleep 30"):
        LocalHost().run(["sleep", "30"], timeout=1)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches users")
def test_db_user_commands_run_as_that_user_and_die_with_drflow() -> None:
    host = LocalHost()
    result = host.run(["sh", "-c", "id -un; echo $HOME"], as_db_user=True)
    assert result.stdout.split() == [host.db_user, pwd.getpwnam(host.db_user).pw_dir]
    marker = _marker()
    code = (
        "import os; from drflow.hosts import LocalHost; LocalHost().run(['sleep', os.environ['MARK']], as_db_user=True)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "MARK": marker})
    try:
        deadline = time.monotonic() + 20
        while not pids_with_arg(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pids_with_arg(marker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert wait_until_gone(marker) == []
    finally:
        parent.kill()
        for pid in pids_with_arg(marker):
            os.kill(pid, signal.SIGKILL)


def test_a_full_backup_stops_at_the_policy_timeout_and_leaves_nothing_running(
    pg_primary: LocalCluster, tmp_path: Path
) -> None:
    backup_id = f"20261127T000000Z-daily-full-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(**pg_primary.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute("create table filler as select n, md5(n::text) from generate_series(1, 300000) n")
    request = full_backup_request(
        pg_primary,
        [{"name": "local", "type": "local", "path": str(tmp_path / "store")}],
        backup_id,
        max_rate="32k",
        timeout_s=2,
    )
    started = time.monotonic()
    with pytest.raises(BackupError, match=r"did not finish within 2s and was stopped"):
        take_full_backup(request)
    assert time.monotonic() - started < 20
    assert wait_until_gone(backup_id, timeout=5) == []
