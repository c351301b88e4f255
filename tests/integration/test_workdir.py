"""The worker's scratch space: no system directories, private modes, leftovers of killed runs removed."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drflow.workdir import LOCK_NAME, WorkDirError, check_work_dir, scratch_dir, work_root

HOLD = (
    "import sys, time\n"
    "from drflow.workdir import scratch_dir\n"
    "with scratch_dir(sys.argv[1], 'killed') as path:\n"
    "    (path / 'staged.bin').write_bytes(b'x' * 1024)\n"
    "    print(path, flush=True)\n"
    "    time.sleep(600)\n"
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    "path", ["/", "/etc", "/usr", "/var", "/bin", "/home", "/root", "/tmp", "/var/lib", "/etc/drflow", "/usr/share/x"]
)
def test_system_directories_are_refused(path: str) -> None:
    with pytest.raises(WorkDirError, match="system or home directory.*Use a directory of its own"):
        check_work_dir(Path(path))


def test_a_users_home_is_refused_and_own_directories_are_fine(tmp_path: Path) -> None:
    with pytest.raises(WorkDirError):
        check_work_dir(Path.home())
    for fine in ("/var/tmp/drflow", "/srv/drflow/work", "/usr/local/drflow", str(tmp_path / "w")):
        assert check_work_dir(Path(fine)) == Path(fine).resolve()


def test_modes_are_set_only_on_directories_drflow_creates(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o750)
    existing.chmod(0o750)
    assert work_root(str(existing)) == existing
    assert _mode(existing) == 0o750  # not ours: untouched
    created = work_root(str(tmp_path / "new" / "root"))
    assert _mode(created) == 0o755 and _mode(created.parent) == 0o755
    with scratch_dir(str(existing), "mode") as scratch:
        assert _mode(scratch) == 0o700
    assert not scratch.exists()


def test_a_killed_runs_scratch_dir_is_removed_by_the_next_run_not_a_live_ones(tmp_path: Path) -> None:
    root = tmp_path / "work"
    killed = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True)
    live = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert killed.stdout is not None and live.stdout is not None
        killed_dir, live_dir = Path(killed.stdout.readline().strip()), Path(live.stdout.readline().strip())
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        assert (killed_dir / "staged.bin").exists()  # nothing ran to clean up
        with scratch_dir(str(root), "next") as mine:
            assert (mine / LOCK_NAME).exists()
            assert not killed_dir.exists()
            assert (live_dir / "staged.bin").exists()
    finally:
        for proc in (killed, live):
            proc.kill()
            proc.wait(10)
    time.sleep(0.1)
    with scratch_dir(str(root), "after"):
        assert not live_dir.exists()
    assert sorted(os.listdir(root)) == []


DRILL = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from drflow.engines.postgres.cluster import LocalCluster, free_port\n"
    "from drflow.hosts import LocalHost\n"
    "from drflow.workdir import scratch_dir\n"
    "host = LocalHost()\n"
    "with scratch_dir(sys.argv[1], 'drill-killed') as path:\n"
    "    host.chown_to_db_user(path)\n"
    "    cluster = LocalCluster(path / 'data', free_port(), path / 'data', Path(sys.argv[2]), host)\n"
    "    cluster.init(no_sync=True)\n"
    "    cluster.start(60)\n"
    "    print((path / 'data' / 'postmaster.pid').read_text().split()[0], flush=True)\n"
    "    time.sleep(600)\n"
)


def test_a_killed_drills_server_is_stopped_before_its_scratch_dir_is_removed(
    pg_workdir: Path, pg_bin_dir: Path
) -> None:
    root = pg_workdir / "work"
    drill = subprocess.Popen(
        [sys.executable, "-c", DRILL, str(root), str(pg_bin_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert drill.stdout is not None
        postmaster = int(drill.stdout.readline().strip())
        drill.send_signal(signal.SIGKILL)
        drill.wait(10)
    finally:
        drill.kill()
    assert Path(f"/proc/{postmaster}").exists()  # pg_ctl detaches the server: it outlived the kill
    with scratch_dir(str(root), "next"):
        assert not Path(f"/proc/{postmaster}").exists()
        assert [p.name for p in root.iterdir() if p.name.startswith("drill-killed")] == []
