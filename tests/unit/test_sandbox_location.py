"""The sandbox lives where PostgreSQL's OS user can reach it, whatever directory the clone is in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drflow.devtools.sandbox import control
from drflow.hosts import LocalHost
from tests.fixtures.s3 import free_port

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root switches to the postgres user (the case of a clone under /root)"
)


@pytest.fixture
def private_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout under a 0700 directory (like /root/x), as the current directory and the project root."""
    clone = tmp_path / "private" / "drflow"
    clone.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)
    monkeypatch.chdir(clone)
    monkeypatch.setattr(control, "PROJECT_ROOT", clone)
    monkeypatch.delenv("DRFLOW_SANDBOX_DIR", raising=False)
    return clone


@needs_root
def test_default_sandbox_of_a_clone_in_a_private_directory_is_reachable_by_postgres(private_clone: Path) -> None:
    root = control.sandbox_root()
    assert private_clone not in root.parents
    assert root.parent == Path("/var/tmp") and root.name.startswith(f"drflow-sandbox-{os.geteuid()}-")
    created = not root.exists()
    try:
        # What sandbox up does for the data directories: owned by postgres, which must be able to enter it.
        LocalHost().make_private_dir(root / "pg" / "probe")
    finally:
        if created:
            shutil.rmtree(root, ignore_errors=True)


def test_each_checkout_gets_its_own_sandbox(private_clone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = control.sandbox_root()
    assert control.sandbox_root() == first  # stable, so sandbox down finds what up started
    monkeypatch.setattr(control, "PROJECT_ROOT", private_clone.parent / "other-clone")
    assert control.sandbox_root() != first
    monkeypatch.setenv("DRFLOW_SANDBOX_DIR", str(private_clone / "sb"))
    assert control.sandbox_root() == private_clone / "sb"


@needs_root
def test_an_unreachable_sandbox_dir_is_a_one_line_error_not_a_traceback(private_clone: Path) -> None:
    env = {
        **os.environ,
        "DRFLOW_SANDBOX_DIR": str(private_clone / "sandbox"),
        "DRFLOW_SANDBOX_PRIMARY_PORT": str(free_port()),
        "DRFLOW_SANDBOX_REPLICA_PORT": str(free_port()),
        "DRFLOW_SANDBOX_S3_PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "drflow.cli", "sandbox", "up"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "HostError" not in result.stderr
    assert "error: user postgres cannot reach" in result.stderr
    assert "chmod o+x" in result.stderr
