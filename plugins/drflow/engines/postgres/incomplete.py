"""Mark a restore directory incomplete while drflow writes into it, so a killed run is never mistaken.

:func:`marked_incomplete` writes ``.drflow-incomplete`` into the (empty) target directory before
anything else and removes it last, once the layout is complete and verified. While the run lives
it holds an ``flock`` on the marker: a later run tells a live restore (lock held) from one left by
a killed run (no lock), whatever became of its pid. :func:`check_incomplete` names such a
directory; :func:`clean_incomplete` (``drflow restore --clean-incomplete``) empties it — the
directory was empty when drflow started, so everything in it is drflow's — the marker last.

The marker is a file on this machine: like the layout itself it assumes the local host.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drflow.hosts import Host

MARKER = ".drflow-incomplete"


class IncompleteRestoreError(ValueError):
    """The target directory holds an incomplete restore; the message says what to do."""


@contextlib.contextmanager
def marked_incomplete(target_dir: Path, *, backup_id: str) -> Iterator[None]:
    """Hold the marker in ``target_dir`` while the body runs; remove it only when the body succeeds."""
    marker = target_dir / MARKER
    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        info = {
            "backup_id": backup_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
        yield
        marker.unlink()
    finally:
        os.close(fd)


def _read(marker: Path) -> tuple[dict[str, Any], bool]:
    """The marker's content and whether a live process still holds it."""
    try:
        fd = os.open(marker, os.O_RDONLY)
    except FileNotFoundError:
        return {}, False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            alive = False
        except BlockingIOError:
            alive = True
        try:
            info = json.loads(os.read(fd, 4096) or b"{}")
        except ValueError:
            info = {}
    finally:
        os.close(fd)
    return (info if isinstance(info, dict) else {}), alive


def _describe(info: dict[str, Any]) -> str:
    parts = [f"backup {info['backup_id']}" if info.get("backup_id") else "an unknown backup"]
    if info.get("pid"):
        parts.append(f"pid {info['pid']} on {info.get('host', '?')}")
    if info.get("started_at"):
        parts.append(f"started {info['started_at']}")
    return ", ".join(parts)


def check_incomplete(target_dir: Path) -> None:
    """Raise :class:`IncompleteRestoreError` when ``target_dir`` holds drflow's incomplete-restore marker."""
    marker = target_dir / MARKER
    if not marker.exists():
        return
    info, alive = _read(marker)
    if alive:
        raise IncompleteRestoreError(
            f"a drflow restore is writing into {target_dir} right now ({_describe(info)}); "
            "wait for it to finish, or stop it first"
        )
    raise IncompleteRestoreError(
        f"{target_dir} holds an INCOMPLETE restore ({_describe(info)}) left by a drflow run that was stopped; "
        "nothing in it is usable. Rerun `drflow restore` with --clean-incomplete (or empty the directory) to "
        "remove what that run wrote, then restore again (nothing was changed)"
    )


def clean_incomplete(target_dir: Path, *, host: Host) -> str | None:
    """Empty ``target_dir`` if it holds the marker of a dead run (the marker last); say what was removed."""
    marker = target_dir / MARKER
    if not marker.exists():
        return None
    info, alive = _read(marker)
    if alive:
        check_incomplete(target_dir)  # raises: a live run owns it
    host.run(["find", str(target_dir), "-mindepth", "1", "!", "-path", str(marker), "-delete"])
    marker.unlink()
    return f"removed the incomplete restore in {target_dir} ({_describe(info)})"
