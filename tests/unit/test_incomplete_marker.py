"""The incomplete-restore marker: a live run's directory, a killed run's, and the form check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from drflow.engines.postgres.incomplete import (
    MARKER,
    IncompleteRestoreError,
    check_incomplete,
    marked_incomplete,
    server_pid,
)
from drflow.jobs.pitr import check_restore_dir


def test_live_and_dead_runs_are_told_apart(tmp_path: Path) -> None:
    with marked_incomplete(tmp_path, backup_id="b1"):
        with pytest.raises(IncompleteRestoreError, match="is writing into .* right now"):
            check_incomplete(tmp_path)
        (tmp_path / "base").mkdir()
    assert not (tmp_path / MARKER).exists()  # removed last, on success
    check_incomplete(tmp_path)

    left = tmp_path / "left"
    left.mkdir()
    (left / MARKER).write_text(json.dumps({"backup_id": "b2", "pid": 1, "started_at": "2026-12-01T00:00:00+00:00"}))
    with pytest.raises(IncompleteRestoreError, match=r"holds an INCOMPLETE restore \(backup b2, pid 1"):
        check_incomplete(left)
    with pytest.raises(ValueError, match="INCOMPLETE restore.*--clean-incomplete"):
        check_restore_dir(str(left))


def test_a_failed_body_keeps_the_marker(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), marked_incomplete(tmp_path, backup_id="b3"):
        raise RuntimeError("killed")
    assert json.loads((tmp_path / MARKER).read_text())["backup_id"] == "b3"


def test_a_server_left_running_in_a_killed_runs_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text(json.dumps({"backup_id": "b4", "target": "time 2026-12-01T00:00:00+00:00"}))
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n{tmp_path}\n")  # a live pid stands for the server
    with pytest.raises(IncompleteRestoreError) as raised:
        check_incomplete(tmp_path)
    message = str(raised.value)
    assert "INCOMPLETE restore (backup b4 recovered to time 2026-12-01T00:00:00+00:00)" in message
    assert f"server it started still runs there (pid {os.getpid()}); --clean-incomplete stops it" in message

    (tmp_path / "postmaster.pid").write_text("999999999\n")  # no such process: a stale pid file names nothing
    assert server_pid(tmp_path) is None
    with pytest.raises(IncompleteRestoreError) as raised:
        check_incomplete(tmp_path)
    assert "still runs there" not in str(raised.value)
