"""Run a child process so that nothing outlives drflow: the one runner every engine uses.

Each child starts in its own process group (its own session) and, on Linux, gets
``PR_SET_PDEATHSIG(SIGKILL)``: when the drflow process dies, even by SIGKILL, the kernel kills the
child. Its own children (``tar``'s ``zstd``, ``pg_basebackup``'s WAL streamer, pgBackRest's
helpers) read from or write to pipes of the child and end when it is gone. On a timeout, an
exception or a signal turned into an exception (Airflow stopping a task, Ctrl-C), the whole group
is killed before the error is raised. Switching to the database user is done here (``user``)
instead of through ``runuser``, so that the death signal is set on the command itself.

Every run has a timeout: the caller's, else :data:`DEFAULT_TIMEOUT_S`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import hashlib
import os
import pwd
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 6 * 3600.0
"""A command without a timeout of its own (from the spec's policy) is stopped after six hours."""
_PR_SET_PDEATHSIG = 1
_KILL_WAIT_S = 5.0
_STREAM_CHUNK = 1024 * 1024


@functools.cache
def _prctl() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def _preexec() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    prctl = _prctl()  # resolved here: the child, between fork and exec, only calls it

    def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would kill us later.
        if os.getppid() != parent:
            os._exit(1)

    return die_with_parent


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the child's whole process group and reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_KILL_WAIT_S)


def user_env(user: str) -> dict[str, str]:
    """What ``runuser`` would set for ``user``: HOME, USER, LOGNAME."""
    entry = pwd.getpwnam(user)
    return {"HOME": entry.pw_dir, "USER": user, "LOGNAME": user}


def _switch_user(env: Mapping[str, str] | None, user: str | None) -> tuple[dict[str, str] | None, dict[str, Any]]:
    """The environment and the Popen arguments that run a child as ``user`` (None: as this process)."""
    full_env = dict(env) if env is not None else None
    if user is None:
        return full_env, {}
    entry = pwd.getpwnam(user)
    groups = os.getgrouplist(user, entry.pw_gid)
    switch = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": groups}
    return {**(full_env if full_env is not None else os.environ), **user_env(user)}, switch


def run(
    argv: Sequence[str | Path],
    *,
    timeout: float | None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    user: str | None = None,
    stdin_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (no shell), capture its text output, never raise on a non-zero exit.

    ``env`` replaces the environment when given (callers merge ``os.environ`` themselves).
    ``user`` runs the command as that user (root only), with its supplementary groups and
    ``HOME``/``USER``/``LOGNAME``. Raises :class:`subprocess.TimeoutExpired` (output as text,
    the group already killed) after ``timeout`` (default :data:`DEFAULT_TIMEOUT_S`), and
    ``FileNotFoundError`` when the program does not exist.
    """
    args = [str(a) for a in argv]
    limit = DEFAULT_TIMEOUT_S if timeout is None else timeout
    full_env, switch = _switch_user(env, user)
    proc = subprocess.Popen(
        args,
        env=full_env,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=_preexec(),  # only prctl(): no locks taken between fork and exec
        **switch,
    )
    try:
        stdout, stderr = proc.communicate(stdin_text, timeout=limit)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        stdout, stderr = _drain(proc)
        raise subprocess.TimeoutExpired(args, limit, output=stdout, stderr=stderr) from None
    except BaseException:
        kill_group(proc)
        raise
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def _drain(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        stdout, stderr = proc.communicate(timeout=_KILL_WAIT_S)
    except (subprocess.TimeoutExpired, ValueError):
        return "", ""
    return stdout or "", stderr or ""


@dataclass(frozen=True)
class Streamed:
    """What :func:`run_to_file` wrote: the child's exit code and stderr, and the output's size and sha256."""

    returncode: int
    stderr: str
    size: int
    sha256: str


def run_to_file(
    argv: Sequence[str | Path],
    dest: Path,
    *,
    timeout: float | None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
) -> Streamed:
    """Run ``argv`` (no shell) with its binary stdout written to ``dest`` and hashed in the same pass.

    One read of the output instead of two (write, then hash the file): the sha256 is of exactly the
    bytes written. ``dest`` is not fsynced (a scratch file: whoever keeps it syncs it). Never raises
    on a non-zero exit; on a timeout (default :data:`DEFAULT_TIMEOUT_S`) the group is killed and
    :class:`subprocess.TimeoutExpired` raised; on any error ``dest`` is removed. Raises
    ``FileNotFoundError`` when the program does not exist. ``env`` and ``user`` as in :func:`run`.
    """
    args = [str(a) for a in argv]
    limit = DEFAULT_TIMEOUT_S if timeout is None else timeout
    full_env, switch = _switch_user(env, user)
    proc = subprocess.Popen(
        args,
        env=full_env,
        cwd="/" if user is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_preexec(),
        **switch,
    )
    assert proc.stdout is not None and proc.stderr is not None
    with contextlib.suppress(OSError, AttributeError):  # fewer wake-ups per MiB: a 1 MiB pipe (Linux)
        fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, _STREAM_CHUNK)
    errors: list[bytes] = []
    stderr_pipe = proc.stderr
    drain = threading.Thread(target=lambda: errors.append(stderr_pipe.read()), daemon=True)
    drain.start()
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        kill_group(proc)

    timer = threading.Timer(limit, expire)
    timer.start()
    digest, size = hashlib.sha256(), 0
    try:
        with open(dest, "wb") as out:
            while chunk := proc.stdout.read(_STREAM_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        proc.wait(timeout=_KILL_WAIT_S if timed_out.is_set() else None)
        drain.join()
    except BaseException:
        kill_group(proc)
        with contextlib.suppress(OSError):
            dest.unlink(missing_ok=True)
        raise
    finally:
        timer.cancel()
        proc.stdout.close()
    stderr = b"".join(errors).decode(errors="replace")
    if timed_out.is_set():
        with contextlib.suppress(OSError):
            dest.unlink(missing_ok=True)
        raise subprocess.TimeoutExpired(args, limit, stderr=stderr)
    return Streamed(proc.returncode, stderr, size, digest.hexdigest())
