"""Detached sandbox servers (moto, the webhook receiver): start one, wait until it answers, stop it.

They run in their own session so that they outlive the command that started them (``drflow sandbox
up``); the tests start and stop them themselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from drflow.units import human_duration

# Popen objects of servers started by this process, kept so that stopping one
# reaps it (no zombie) and Python does not warn about a still-running child.
_children: dict[int, subprocess.Popen[bytes]] = {}


def start_server(
    argv: Sequence[str],
    *,
    log_path: Path,
    answers: Callable[[], bool],
    timeout: float,
    what: str,
    error: type[Exception],
) -> int:
    """Start ``argv`` detached, logging to ``log_path``; its pid once ``answers()``, else ``error`` naming ``what``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _children[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _children.pop(proc.pid, None)
            raise error(
                f"{what} exited with code {proc.returncode} before answering; see {log_path}:\n{log_tail(log_path)}"
            )
        if answers():
            return proc.pid
        time.sleep(0.1)
    stop_server(proc.pid)
    raise error(f"{what} did not answer within {human_duration(timeout)}; see {log_path}:\n{log_tail(log_path)}")


def stop_server(pid: int, timeout: float = 10.0) -> None:
    """Stop a server started by start_server, or by an earlier command (SIGTERM, then SIGKILL). Missing pid is fine."""
    proc = _children.pop(pid, None)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        if proc is not None:
            proc.wait()
        return
    if _wait_gone(pid, proc, timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, proc, timeout)


def _wait_gone(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    if proc is not None:
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    # Not our child (started by an earlier command): poll until it is gone.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
