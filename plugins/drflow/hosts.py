"""Where work must happen on a database host rather than over a connection.

Laying out a restored data directory, running ``initdb`` or ``pg_ctl``, and
``pg_rewind`` need a shell on the machine that holds the data directory. Every
such step goes through a :class:`Host`, so nothing else assumes that the
Airflow worker is the database host.

Only :class:`LocalHost` (the worker is the host: the sandbox, drills on the
worker, tests) exists today. An ``SshHost`` built on a ``conn_id`` through
apache-airflow-providers-ssh is future work: it would implement the same
protocol by running the argument list remotely (quoted with ``shlex.join``),
prefixing ``sudo -u <db_user> --`` instead of ``runuser``; callers that hand it
local paths (backup files to lay out) would first have to copy them over.
"""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from drflow import process
from drflow.units import human_duration

STDERR_TAIL_LINES = 20


class HostError(RuntimeError):
    """A command or file operation on a host failed; the message says what to do."""

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] | None = None,
        returncode: int | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message)
        self.argv = list(argv) if argv is not None else None
        self.returncode = returncode
        self.stderr = stderr


def tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of ``text``, for error messages."""
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


@runtime_checkable
class Host(Protocol):
    """A machine on which database-side commands run."""

    @property
    def db_user(self) -> str:
        """The operating-system user that owns data directories and runs the server."""
        ...

    def run(
        self,
        argv: Sequence[str],
        *,
        as_db_user: bool = False,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (never through a shell); ``env`` is added to the host's environment.

        With ``check`` a non-zero exit raises :class:`HostError` carrying the stderr tail.
        """
        ...

    def chown_to_db_user(self, path: Path, *, recursive: bool = False) -> None: ...

    def make_private_dir(self, path: Path) -> Path:
        """Create ``path`` (and parents), owned by the db user, mode 700; return it."""
        ...


class LocalHost:
    """The worker itself is the database host.

    As root, commands with ``as_db_user`` run through ``runuser -u <db_user> --``
    (PostgreSQL refuses to run as root) and files are chowned to that user. As
    any other user, the db user is the current user and no switch happens.
    """

    def __init__(self, db_user: str | None = None) -> None:
        self._is_root = os.geteuid() == 0
        current = pwd.getpwuid(os.geteuid()).pw_name
        if self._is_root:
            self._db_user = db_user or "postgres"
        else:
            if db_user is not None and db_user != current:
                raise HostError(
                    f"cannot act as database user {db_user!r}: this process runs as {current!r} "
                    "and only root can switch users; run as root or drop the db_user argument"
                )
            self._db_user = current
        try:
            entry = pwd.getpwnam(self._db_user)
        except KeyError:
            raise HostError(
                f"database user {self._db_user!r} does not exist on this host; "
                "install the PostgreSQL server package or create the user"
            ) from None
        self._uid, self._gid = entry.pw_uid, entry.pw_gid

    def __repr__(self) -> str:
        return f"LocalHost(db_user={self._db_user!r})"

    @property
    def db_user(self) -> str:
        return self._db_user

    @property
    def switches_user(self) -> bool:
        """True when commands for the db user run under that user's id (this process is root)."""
        return self._is_root and self._uid != 0

    def run(
        self,
        argv: Sequence[str],
        *,
        as_db_user: bool = False,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        args = [str(a) for a in argv]
        if not args:
            raise ValueError("empty argument list")
        switch = as_db_user and self.switches_user
        # For messages: the command as a person would type it to run it as the db user.
        full = ["runuser", "-u", self._db_user, "--", *args] if switch else args
        full_env = {**os.environ, **env} if env else None
        try:
            result = process.run(
                args,
                env=full_env,
                # The db user may not be able to enter the caller's cwd (e.g. pytest's tmp_path).
                cwd="/" if switch else None,
                user=self._db_user if switch else None,
                timeout=timeout,
            )
        except FileNotFoundError as exc:
            raise HostError(
                f"cannot run {args[0]!r}: {exc.strerror}; is it installed and on PATH "
                "(or is the PostgreSQL bin_dir right)?",
                argv=full,
            ) from exc
        except subprocess.TimeoutExpired as exc:
            stderr = str(exc.stderr or "")
            raise HostError(
                f"command timed out after {human_duration(exc.timeout)}: {shlex.join(full)}\n{tail(stderr)}\n"
                "raise the timeout or find out why it hangs",
                argv=full,
                stderr=stderr,
            ) from exc
        if check and result.returncode != 0:
            raise HostError(
                f"command failed with exit code {result.returncode}: {shlex.join(full)}\n"
                f"{tail(result.stderr or result.stdout)}",
                argv=full,
                returncode=result.returncode,
                stderr=result.stderr,
            )
        return result

    def chown_to_db_user(self, path: Path, *, recursive: bool = False) -> None:
        if not self._is_root:
            return  # files we create are already ours, and only root may give them away
        try:
            os.chown(path, self._uid, self._gid, follow_symlinks=False)
            if recursive and path.is_dir() and not path.is_symlink():
                for dirpath, dirnames, filenames in os.walk(path):
                    for name in (*dirnames, *filenames):
                        os.chown(os.path.join(dirpath, name), self._uid, self._gid, follow_symlinks=False)
        except OSError as exc:
            raise HostError(f"cannot chown {path} to {self._db_user}: {exc}") from exc

    def make_private_dir(self, path: Path) -> Path:
        try:
            path.mkdir(parents=True, exist_ok=True)
            self.chown_to_db_user(path)
            path.chmod(0o700)
        except OSError as exc:
            raise HostError(f"cannot create private directory {path}: {exc}") from exc
        if self.switches_user:
            self._check_reachable(path)
        return path

    def _check_reachable(self, path: Path) -> None:
        probe = self.run(["test", "-w", str(path), "-a", "-x", str(path)], as_db_user=True, check=False)
        if probe.returncode != 0:
            blocked = next((p for p in reversed(path.parents) if not _others_can_enter(p)), None)
            where = f" ({blocked} is not traversable: chmod o+x {blocked})" if blocked else ""
            raise HostError(
                f"user {self._db_user} cannot reach {path}{where}; use a directory every parent "
                f"of which {self._db_user} can enter (not pytest's tmp_path under /tmp/pytest-of-root)"
            )


def _others_can_enter(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & 0o001)
    except OSError:
        return False
