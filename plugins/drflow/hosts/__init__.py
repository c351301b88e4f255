"""Where work must happen on a database or file host rather than over a connection.

Laying out a restored data directory, running ``initdb``, ``pg_ctl``, ``pg_rewind`` or pgBackRest, and
archiving a file tree need a shell on the machine that holds the data. Every such step goes through a
:class:`Host`, so nothing else assumes that the Airflow worker is that machine:

* :class:`LocalHost`: the worker is the host (the sandbox, drills on the worker, ``host: local``);
* :class:`~drflow.hosts.ssh.SshHost`: a host reached over SSH through the ssh provider's ``SSHHook``
  (``host: {ssh_conn_id: …}`` in the spec). Files a command there reads or writes go through the
  same host (:meth:`Host.write_text`, :meth:`Host.put_file`, :meth:`Host.fetch_file`), and output
  is streamed into a local file (:meth:`Host.run_to_file`), never held whole in memory.

:func:`drflow.hosts.open.open_host` picks one from the spec's host.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

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

    @property
    def local(self) -> bool:
        """True when the host is the worker itself (its paths are this machine's)."""
        ...

    def describe(self) -> str:
        """The host for messages: ``local`` or ``ssh user@host:port``."""
        ...

    def run_to_file(
        self,
        argv: Sequence[str],
        dest: Path,
        *,
        as_db_user: bool = False,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> process.Streamed:
        """Run ``argv`` with its stdout streamed into the worker's file ``dest``, hashed in the same pass.

        Never raises on a non-zero exit; raises :class:`HostError` when it cannot run or times out.
        """
        ...

    def read_text(self, path: Path, *, as_db_user: bool = True) -> str | None:
        """The text of the host's file ``path``; None when it does not exist."""
        ...

    def write_text(self, path: Path, text: str, *, as_db_user: bool = True, mode: int = 0o600) -> None:
        """Write the host's file ``path`` (owned by the db user with ``as_db_user``; ``mode`` when created)."""
        ...

    def put_file(self, src: Path, dest: Path, *, as_db_user: bool = False, mode: int = 0o600) -> None:
        """Copy the worker's file ``src`` to the host's ``dest``, streamed."""
        ...

    def fetch_file(self, src: Path, dest: Path, *, as_db_user: bool = False) -> None:
        """Copy the host's file ``src`` to the worker's ``dest``, streamed."""
        ...

    def staging_dir(self, scratch: Path, *, as_db_user: bool = True) -> contextlib.AbstractContextManager[Path]:
        """A private directory on the host for files a command there reads (a configuration, a tar
        snapshot file): the worker's ``scratch`` itself on a local host, a fresh one removed afterwards
        on a remote host."""
        ...

    def close(self) -> None:
        """Release the host's connection (nothing for a local host)."""
        ...


class HostBase:
    """What every :class:`Host` does alike: it is its own context manager (leaving closes it) and names its
    database user."""

    _db_user: str

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    @property
    def db_user(self) -> str:
        return self._db_user

    def close(self) -> None:
        return None


class LocalHost(HostBase):
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
        self._reachable: list[Path] = []  # directories the db user was seen to reach (make_private_dir)

    def __repr__(self) -> str:
        return f"LocalHost(db_user={self._db_user!r})"

    @property
    def local(self) -> bool:
        return True

    def describe(self) -> str:
        return "local"

    @property
    def switches_user(self) -> bool:
        """True when commands for the db user run under that user's id (this process is root)."""
        return self._is_root and self._uid != 0

    def _typed(self, args: list[str], switch: bool) -> list[str]:
        """For messages: the command as a person would type it to run it as the db user."""
        return ["runuser", "-u", self._db_user, "--", *args] if switch else args

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
        full = self._typed(args, switch)
        full_env = {**os.environ, **env} if env else None
        with _host_errors(args, full):
            result = process.run(
                args,
                env=full_env,
                # The db user may not be able to enter the caller's cwd (e.g. pytest's tmp_path).
                cwd="/" if switch else None,
                user=self._db_user if switch else None,
                timeout=timeout,
            )
        if check and result.returncode != 0:
            raise HostError(
                f"command failed with exit code {result.returncode}: {shlex.join(full)}\n"
                f"{tail(result.stderr or result.stdout)}",
                argv=full,
                returncode=result.returncode,
                stderr=result.stderr,
            )
        return result

    def run_to_file(
        self,
        argv: Sequence[str],
        dest: Path,
        *,
        as_db_user: bool = False,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> process.Streamed:
        args = [str(a) for a in argv]
        switch = as_db_user and self.switches_user
        with _host_errors(args, self._typed(args, switch)):
            return process.run_to_file(
                args,
                dest,
                timeout=timeout,
                env={**os.environ, **env} if env else None,
                user=self._db_user if switch else None,
            )

    def read_text(self, path: Path, *, as_db_user: bool = True) -> str | None:
        try:
            return Path(path).read_text(errors="replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise HostError(f"cannot read {path}: {exc.strerror}") from exc

    def write_text(self, path: Path, text: str, *, as_db_user: bool = True, mode: int = 0o600) -> None:
        path = Path(path)
        try:
            existed = path.exists()
            with path.open("w") as fh:  # truncating in place keeps the owner (the db user) when we run as root
                fh.write(text)
            if not existed:
                path.chmod(mode)
                if as_db_user:
                    self.chown_to_db_user(path)
        except OSError as exc:
            raise HostError(f"cannot write {path}: {exc.strerror}") from exc

    def put_file(self, src: Path, dest: Path, *, as_db_user: bool = False, mode: int = 0o600) -> None:
        try:
            shutil.copyfile(src, dest)
            Path(dest).chmod(mode)
        except OSError as exc:
            raise HostError(f"cannot copy {src} to {dest}: {exc.strerror}") from exc
        if as_db_user:
            self.chown_to_db_user(Path(dest))

    def fetch_file(self, src: Path, dest: Path, *, as_db_user: bool = False) -> None:
        if Path(src).resolve() == Path(dest).resolve():
            return
        try:
            shutil.copyfile(src, dest)
        except OSError as exc:
            raise HostError(f"cannot copy {src} to {dest}: {exc.strerror}") from exc

    @contextlib.contextmanager
    def staging_dir(self, scratch: Path, *, as_db_user: bool = True) -> Iterator[Path]:
        if as_db_user:
            self.chown_to_db_user(scratch)  # commands run as the db user and read files here (0700)
        yield scratch

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
        # A directory we just made the db user's (0700) is reachable when its parent is one the user was seen to
        # reach, or an ancestor of one: each probe is a process start (a few of them per restore).
        parent = Path(os.path.abspath(path)).parent
        if not any(parent == seen or parent in seen.parents for seen in self._reachable):
            self._probe_reachable(path)
        self._reachable.append(Path(os.path.abspath(path)))

    def _probe_reachable(self, path: Path) -> None:
        probe = self.run(["test", "-w", str(path), "-a", "-x", str(path)], as_db_user=True, check=False)
        if probe.returncode != 0:
            blocked = next((p for p in reversed(path.parents) if not _others_can_enter(p)), None)
            where = f" ({blocked} is not traversable: chmod o+x {blocked})" if blocked else ""
            raise HostError(
                f"user {self._db_user} cannot reach {path}{where}; use a directory every parent "
                f"of which {self._db_user} can enter (not pytest's tmp_path under /tmp/pytest-of-root)"
            )


@contextlib.contextmanager
def _host_errors(args: list[str], shown: list[str]) -> Iterator[None]:
    """A command ``args`` that cannot start or does not end in time, as a :class:`HostError` that says what to
    do; ``shown``: the command as a person would type it (see :meth:`LocalHost._typed`)."""
    try:
        yield
    except FileNotFoundError as exc:
        raise HostError(
            f"cannot run {args[0]!r}: {exc.strerror}; is it installed and on PATH "
            "(or is the PostgreSQL bin_dir right)?",
            argv=shown,
        ) from exc
    except subprocess.TimeoutExpired as exc:
        stderr = str(exc.stderr or "")
        raise HostError(
            f"command timed out after {human_duration(exc.timeout)}: {shlex.join(shown)}\n{tail(stderr)}\n"
            "raise the timeout or find out why it hangs",
            argv=shown,
            stderr=stderr,
        ) from exc


def _others_can_enter(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & 0o001)
    except OSError:
        return False
