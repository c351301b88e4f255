"""LocalHost.make_private_dir probes the db user's reach once per directory tree; the unreachable is still refused."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from drflow.hosts import HostError, LocalHost

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root switches to the postgres user")


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can enter (tmp_path, under /tmp/pytest-of-root, is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="drflow-reach-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_directory_next_to_or_inside_a_reached_one_is_not_probed_again(
    open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = LocalHost()
    probed: list[Path] = []
    probe = host._probe_reachable

    def counted(path: Path) -> None:
        probed.append(path)
        probe(path)

    monkeypatch.setattr(host, "_probe_reachable", counted)
    data = host.make_private_dir(open_dir / "restore" / "data")
    host.make_private_dir(data / "drflow_restore_wal")  # inside: its parent was reached
    host.make_private_dir(open_dir / "restore" / "socket")  # next to it: their parent was entered
    assert probed == [data]
    assert (data / "drflow_restore_wal").stat().st_uid == (open_dir / "restore" / "socket").stat().st_uid != 0


def test_an_unreachable_directory_is_still_refused_after_another_was_reached(open_dir: Path, tmp_path: Path) -> None:
    host = LocalHost()
    host.make_private_dir(open_dir / "data")
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(HostError, match=r"user postgres cannot reach .*closed/data"):
        host.make_private_dir(closed / "data")
