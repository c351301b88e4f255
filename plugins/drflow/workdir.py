"""The worker's scratch directory: staging of backups and drill instances. Never shared between tasks.

- ``work_dir`` must not be a system directory (``/``, ``/etc``, ``/usr``, ``/var``, a home root …):
  drflow creates and removes directories in it.
- drflow sets the mode only of directories it creates (the work root 0755, so the database user can
  traverse it; each scratch directory 0700); it never chmods one it did not create.
- Each scratch directory holds a lock (``flock``) for as long as its run lives. A run killed before
  it could clean up leaves its directory unlocked; the next scratch directory taken under the same
  root removes such leftovers first (stopping a PostgreSQL server a killed drill left running in one).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_WORK_DIR = "/var/tmp/drflow"
LOCK_NAME = ".drflow-owner.lock"
_SCRATCH_NAME = re.compile(r"^[^.].*-[0-9a-f]{12}$")
_SYSTEM_DIRS = frozenset(
    Path(p)
    for p in (
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt",
        "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/log",
        "/var/tmp", "/var/run", "/var/spool", "/var/cache", "/usr/local",
    )
)  # fmt: skip
_SYSTEM_TREES = tuple(Path(p) for p in ("/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr"))


class WorkDirError(ValueError):
    """The configured work directory cannot be used; the message says what to choose instead."""


def check_work_dir(path: Path) -> Path:
    """``path`` resolved, or :class:`WorkDirError` when it is a system directory or a home directory."""
    resolved = path.expanduser().resolve()
    homes = {Path(entry.pw_dir) for entry in pwd.getpwall() if entry.pw_dir not in ("", "/")}
    in_tree = any(resolved.is_relative_to(tree) for tree in _SYSTEM_TREES)
    if resolved in _SYSTEM_DIRS or resolved in homes or (in_tree and not resolved.is_relative_to("/usr/local")):
        raise WorkDirError(
            f"work_dir {path} is a system or home directory; drflow creates and removes directories there. "
            f"Use a directory of its own, e.g. {DEFAULT_WORK_DIR} (the default) or /srv/drflow/work"
        )
    return resolved


def ensure_dirs(path: Path, mode: int) -> Path:
    """Create ``path`` and missing parents; only the directories created here get ``mode``."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another run created it in between: not ours
            directory.mkdir()
            directory.chmod(mode)
    return path


def work_root(configured: str | None = None) -> Path:
    root = check_work_dir(Path(configured or os.environ.get("DRFLOW_WORK_DIR") or DEFAULT_WORK_DIR))
    # Scratch PostgreSQL instances run as the postgres user, which must be able to traverse the root.
    return ensure_dirs(root, 0o755)


@contextmanager
def scratch_dir(configured: str | None, purpose: str) -> Iterator[Path]:
    """A fresh directory (0700) under the work root, locked while in use and removed afterwards."""
    root = work_root(configured)
    remove_abandoned(root)
    name = f"{purpose}-{uuid.uuid4().hex[:12]}"
    # Set up under a hidden name and renamed once locked: the sweep never sees it unlocked.
    hidden = root / f".{name}"
    hidden.mkdir(mode=0o700)
    hidden.chmod(0o700)  # whatever the umask
    lock = os.open(hidden / LOCK_NAME, os.O_CREAT | os.O_WRONLY, 0o600)
    path = root / name
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        hidden.rename(path)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(hidden, ignore_errors=True)
        os.close(lock)


def remove_abandoned(root: Path) -> list[Path]:
    """Remove scratch directories under ``root`` whose run is gone (their lock is free); return them."""
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        lock_path = entry / LOCK_NAME
        if not _SCRATCH_NAME.match(entry.name) or entry.is_symlink() or not lock_path.is_file():
            continue
        try:
            lock = os.open(lock_path, os.O_RDONLY)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run owns it
            _stop_servers(entry)
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        finally:
            os.close(lock)
    return removed


def _stop_servers(directory: Path) -> None:
    """Stop (immediate shutdown) PostgreSQL servers whose data directory lies in ``directory``."""
    for pid_file in directory.rglob("postmaster.pid"):
        try:
            lines = pid_file.read_text().splitlines()
            pid, data_dir = int(lines[0]), Path(lines[1])
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except (OSError, ValueError, IndexError):
            continue
        if cwd != data_dir or data_dir != pid_file.parent:
            continue  # the pid is not that server any more
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
