"""Mark a restore directory incomplete while drflow writes into it, so a killed run is never mistaken.

:func:`marked_incomplete` writes ``.drflow-incomplete`` into the (empty) target directory before
anything else and removes it last, once the layout is complete and verified. While the run lives
it holds an ``flock`` on the marker: a later run tells a live restore (lock held) from one left by
a killed run (no lock), whatever became of its pid. :func:`check_incomplete` names such a
directory; :func:`clean_incomplete` (``drflow restore --clean-incomplete``) empties it — the
directory was empty when drflow started, so everything in it is drflow's — the marker last. A
point-in-time recovery holds the marker until the server has replayed to its target and is in the
state asked for; a PostgreSQL server the killed run left replaying there (it runs in a session of
its own, so it outlives drflow) is named, and stopped before anything is removed.

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
def marked_incomplete(target_dir: Path, *, backup_id: str, target: str | None = None) -> Iterator[None]:
    """Hold the marker in ``target_dir`` while the body runs; remove it only when the body succeeds.

    ``target`` is the recovery target of a point-in-time recovery (``time …``, ``LSN …``), for the messages."""
    marker = target_dir / MARKER
    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        info = {
            "backup_id": backup_id,
            **({"target": target} if target else {}),
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
    if info.get("target"):
        parts[0] += f" recovered to {info['target']}"
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
    server = server_pid(target_dir)
    running = f" A PostgreSQL server it started still runs there (pid {server}); --clean-incomplete stops it."
    raise IncompleteRestoreError(
        f"{target_dir} holds an INCOMPLETE restore ({_describe(info)}) left by a drflow run that was stopped; "
        f"nothing in it is usable.{running if server else ''} Rerun `drflow restore` with --clean-incomplete "
        "(or empty the directory) to "
        "remove what that run wrote, then restore again (nothing was changed)"
    )


def server_pid(data_dir: Path) -> int | None:
    """The pid of a live PostgreSQL server with ``data_dir`` (from its ``postmaster.pid``), else None."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's (the server's, when drflow is not root)
        pass
    return pid


def stop_server(data_dir: Path, *, host: Host, bin_dir: Path) -> None:
    """Stop (immediate shutdown) a PostgreSQL server running with ``data_dir``; nothing when none runs."""
    if not (data_dir / "postmaster.pid").exists():
        return
    stop = [str(bin_dir / "pg_ctl"), "stop", "-D", str(data_dir), "-m", "immediate", "-w", "-t", "60"]
    result = host.run(stop, as_db_user=True, check=False, timeout=90)
    if (pid := server_pid(data_dir)) is not None:
        raise IncompleteRestoreError(
            f"could not stop the PostgreSQL server (pid {pid}) running in {data_dir}: "
            f"{(result.stderr or result.stdout).strip() or f'pg_ctl exit code {result.returncode}'}; "
            f"stop it (`{bin_dir}/pg_ctl -D {data_dir} stop -m immediate`) and retry"
        )


def clean_incomplete(target_dir: Path, *, host: Host, bin_dir: Path) -> str | None:
    """Empty ``target_dir`` if it holds the marker of a dead run (the marker last), after stopping a server
    that run left running there (``bin_dir``'s ``pg_ctl``); say what was removed."""
    marker = target_dir / MARKER
    if not marker.exists():
        return None
    info, alive = _read(marker)
    if alive:
        check_incomplete(target_dir)  # raises: a live run owns it
    stop_server(target_dir, host=host, bin_dir=bin_dir)
    host.run(["find", str(target_dir), "-mindepth", "1", "!", "-path", str(marker), "-delete"])
    marker.unlink()
    return f"removed the incomplete restore in {target_dir} ({_describe(info)})"
