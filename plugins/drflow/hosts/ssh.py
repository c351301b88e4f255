"""A database or file host reached over SSH, through the ssh provider's ``SSHHook`` (paramiko underneath).

The connection comes from the Airflow connection the spec names (``host: {ssh_conn_id: …}``): host,
port, login, and in its extra the ``private_key`` and the ``host_key`` to trust. Commands run without a
pseudo-terminal, as argument lists quoted with :func:`shlex.join` (never text from the spec through a
shell), through a small ``sh`` wrapper on the host that

* reads the environment (``PGPASSWORD``, pgBackRest's repository keys …) from the first line of its
  standard input, so no secret appears on a command line the host's other users can list;
* starts the command in its own session and kills that whole session when the SSH channel's input
  closes before the command ended: drflow stopping a task, a timeout, or the worker dying (the
  connection drops) ends the command on the host too, as :mod:`drflow.process` does for local children.

Commands for the database user run directly when the SSH login is that user, else through
``sudo -n -H -u <db_user>`` (the login then needs sudo rights for it, without a password).
Output is read in 1 MiB chunks: :meth:`SshHost.run_to_file` writes and hashes a stream (a tar archive)
as it arrives and never holds it whole in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from drflow import process
from drflow.hosts import HostBase, HostError, tail

if TYPE_CHECKING:
    import paramiko

_CHUNK = 1024 * 1024
_POLL_S = 0.5
_OPEN_TIMEOUT_S = 30.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING = 3
# The command runs in its own session (setsid, which does not fork: a background job of a shell without
# job control is no group leader); a watcher kills that session when stdin (the channel) closes early.
_WATCHED = (
    'IFS= read -r drflow_env || exit 125; eval "$drflow_env"; unset drflow_env; cd / || exit 125; '
    "exec 3<&0; "
    'setsid "$@" </dev/null 3<&- & child=$!; '
    '{ cat <&3 >/dev/null; kill -s KILL -- "-$child" 2>/dev/null; } </dev/null >/dev/null 2>&1 & watcher=$!; '
    "exec 3<&-; "
    'wait "$child"; status=$?; kill "$watcher" 2>/dev/null; exit "$status"'
)
# Commands that read the rest of stdin (a file being written) get it directly.
_FED = 'IFS= read -r drflow_env || exit 125; eval "$drflow_env"; unset drflow_env; cd / || exit 125; exec "$@"'
# Written beside the destination, then renamed: a dropped connection never leaves half a file in its place.
_WRITE = 'umask 077; tmp="$1.drflow-tmp"; cat > "$tmp" && chmod "$2" "$tmp" && mv -f "$tmp" "$1"'
_READ = 'if [ -e "$1" ]; then exec cat -- "$1"; else exit 3; fi'


def env_line(env: Mapping[str, str] | None) -> str:
    """The first line the wrapper reads: ``export NAME='value' …`` (``:`` for none)."""
    if not env:
        return ":"
    parts = []
    for name, value in env.items():
        if not _ENV_NAME.match(name):
            raise HostError(f"environment variable name {name!r} cannot be passed to an SSH host; rename it")
        if "\n" in value or "\0" in value:
            raise HostError(f"environment variable {name} holds a line break, which cannot be passed to an SSH host")
        parts.append(f"{name}={shlex.quote(value)}")
    return "export " + " ".join(parts)


class SshHost(HostBase):
    """A host reached over SSH with the Airflow connection ``ssh_conn_id``; see the module's docs.

    The SSH connection opens on first use and is shared by every command (each its own channel, so
    two may run at once, e.g. tar and the tree listing); :meth:`close` ends it.
    """

    def __init__(
        self,
        ssh_conn_id: str,
        *,
        db_user: str = "postgres",
        connect: Callable[[], tuple[paramiko.SSHClient, str, str]] | None = None,
    ) -> None:
        self.ssh_conn_id = ssh_conn_id
        self._db_user = db_user
        self._connect_with = connect or self._connect_with_hook
        self._client: paramiko.SSHClient | None = None
        self._login = ""
        self._where = f"ssh connection {ssh_conn_id}"
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SshHost({self.ssh_conn_id!r}, db_user={self._db_user!r})"

    @property
    def local(self) -> bool:
        return False

    def describe(self) -> str:
        return f"ssh {self._where}"

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- the connection ---------------------------------------------------

    def _connect_with_hook(self) -> tuple[paramiko.SSHClient, str, str]:
        from airflow.providers.ssh.hooks.ssh import SSHHook

        hook = SSHHook(ssh_conn_id=self.ssh_conn_id)
        return hook.get_conn(), str(hook.username), f"{hook.username}@{hook.remote_host}:{hook.port}"

    def _transport(self) -> paramiko.Transport:
        with self._lock:
            if self._client is None:
                try:
                    self._client, self._login, self._where = self._connect_with()
                except HostError:
                    raise
                except Exception as exc:
                    raise HostError(
                        f"cannot open the SSH connection {self.ssh_conn_id!r}: {exc}; check the Airflow connection "
                        "(host, port, login, private_key and host_key in its extra) and that the host's sshd "
                        "accepts that key"
                    ) from exc
            transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            self.close()
            raise HostError(f"the SSH connection to {self._where} was closed; retry the task")
        return transport

    def _command(self, argv: Sequence[str], *, as_db_user: bool, fed: bool) -> str:
        words = ["sh", "-c", _FED if fed else _WATCHED, "drflow", *argv]
        if as_db_user and self._login != self._db_user:
            words = ["sudo", "-n", "-H", "-u", self._db_user, "--", *words]
        return shlex.join(words)

    def _shown(self, argv: Sequence[str], as_db_user: bool) -> str:
        who = f"sudo -u {self._db_user} " if as_db_user and self._login != self._db_user else ""
        return f"ssh {self._where} {who}{shlex.join(argv)}"

    # -- running ----------------------------------------------------------

    def _exec(
        self,
        argv: Sequence[str],
        sink: Callable[[bytes], None],
        *,
        as_db_user: bool,
        env: Mapping[str, str] | None,
        timeout: float | None,
        stdin: BinaryIO | None = None,
    ) -> tuple[int, str]:
        """Run ``argv`` on the host, handing its stdout to ``sink`` chunk by chunk; (exit code, stderr)."""
        args = [str(a) for a in argv]
        if not args:
            raise ValueError("empty argument list")
        limit = process.DEFAULT_TIMEOUT_S if timeout is None else timeout
        deadline = time.monotonic() + limit
        first = (env_line(env) + "\n").encode()
        try:
            channel = self._transport().open_session(timeout=_OPEN_TIMEOUT_S)
        except HostError:
            raise
        except Exception as exc:
            raise HostError(f"cannot open an SSH channel to {self._where}: {exc}; retry the task") from exc
        errors: list[bytes] = []
        try:
            channel.settimeout(_POLL_S)
            channel.exec_command(self._command(args, as_db_user=as_db_user, fed=stdin is not None))
            channel.sendall(first)
            if stdin is not None:
                while chunk := stdin.read(_CHUNK):
                    channel.sendall(chunk)
                channel.shutdown_write()
            drain = threading.Thread(target=_drain_stderr, args=(channel, errors), daemon=True)
            drain.start()
            while True:
                try:
                    data = channel.recv(_CHUNK)
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise subprocess.TimeoutExpired(args, limit) from None
                    continue
                if not data:
                    break
                sink(data)
            while not channel.status_event.wait(_POLL_S):
                if time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired(args, limit)
            drain.join(timeout=max(1.0, deadline - time.monotonic()))
            status = channel.recv_exit_status()
        except subprocess.TimeoutExpired as exc:
            stderr = b"".join(errors).decode(errors="replace")
            raise HostError(
                f"command timed out after {exc.timeout:.0f}s and was stopped: {self._shown(args, as_db_user)}\n"
                f"{tail(stderr)}\nraise the timeout or find out why it hangs",
                argv=args,
                stderr=stderr,
            ) from exc
        except (OSError, EOFError) as exc:
            raise HostError(
                f"the SSH connection to {self._where} failed while running {self._shown(args, as_db_user)}: {exc}; "
                "the command was stopped on the host: retry the task"
            ) from exc
        finally:
            # Closing the channel closes the command's stdin: the wrapper then kills it if it still runs.
            channel.close()
        return status, b"".join(errors).decode(errors="replace")

    def run(
        self,
        argv: Sequence[str],
        *,
        as_db_user: bool = False,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        out: list[bytes] = []
        args = [str(a) for a in argv]
        status, stderr = self._exec(args, out.append, as_db_user=as_db_user, env=env, timeout=timeout)
        stdout = b"".join(out).decode(errors="replace")
        if check and status != 0:
            raise HostError(
                f"command failed with exit code {status}: {self._shown(args, as_db_user)}\n{tail(stderr or stdout)}"
                + _sudo_hint(stderr, self._db_user),
                argv=args,
                returncode=status,
                stderr=stderr,
            )
        return subprocess.CompletedProcess(args, status, stdout, stderr)

    def run_to_file(
        self,
        argv: Sequence[str],
        dest: Path,
        *,
        as_db_user: bool = False,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> process.Streamed:
        digest, size = hashlib.sha256(), 0
        try:
            with open(dest, "wb") as out:

                def sink(chunk: bytes) -> None:
                    nonlocal size
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)

                status, stderr = self._exec(argv, sink, as_db_user=as_db_user, env=env, timeout=timeout)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(dest).unlink(missing_ok=True)
            raise
        return process.Streamed(status, stderr, size, digest.hexdigest())

    # -- files ------------------------------------------------------------

    def read_text(self, path: Path, *, as_db_user: bool = True) -> str | None:
        result = self.run(["sh", "-c", _READ, "drflow-read", str(path)], as_db_user=as_db_user, check=False)
        if result.returncode == _MISSING:
            return None
        if result.returncode != 0:
            raise HostError(f"cannot read {path} on {self._where}: {tail(result.stderr)}", stderr=result.stderr)
        return result.stdout

    def write_text(self, path: Path, text: str, *, as_db_user: bool = True, mode: int = 0o600) -> None:
        import io

        self._feed(io.BytesIO(text.encode()), Path(path), as_db_user=as_db_user, mode=mode)

    def put_file(self, src: Path, dest: Path, *, as_db_user: bool = False, mode: int = 0o600) -> None:
        with open(src, "rb") as handle:
            self._feed(handle, Path(dest), as_db_user=as_db_user, mode=mode)

    def _feed(self, data: BinaryIO, dest: Path, *, as_db_user: bool, mode: int) -> None:
        argv = ["sh", "-c", _WRITE, "drflow-write", str(dest), f"{mode:o}"]
        status, stderr = self._exec(argv, lambda _: None, as_db_user=as_db_user, env=None, timeout=None, stdin=data)
        if status != 0:
            raise HostError(
                f"cannot write {dest} on {self._where} (exit code {status}): {tail(stderr)}"
                + _sudo_hint(stderr, self._db_user),
                returncode=status,
                stderr=stderr,
            )

    def fetch_file(self, src: Path, dest: Path, *, as_db_user: bool = False) -> None:
        result = self.run_to_file(["cat", "--", str(src)], Path(dest), as_db_user=as_db_user)
        if result.returncode != 0:
            Path(dest).unlink(missing_ok=True)
            raise HostError(f"cannot read {src} on {self._where}: {tail(result.stderr)}", stderr=result.stderr)

    @contextlib.contextmanager
    def staging_dir(self, scratch: Path, *, as_db_user: bool = True) -> Iterator[Path]:
        made = self.run(["mktemp", "-d", "/tmp/drflow-XXXXXXXXXX"], as_db_user=as_db_user, timeout=60)
        path = Path(made.stdout.strip())
        try:
            yield path
        finally:
            with contextlib.suppress(HostError):
                self.run(["rm", "-rf", "--", str(path)], as_db_user=as_db_user, check=False, timeout=300)

    def chown_to_db_user(self, path: Path, *, recursive: bool = False) -> None:
        # What drflow writes on an SSH host it writes as the db user already; this only proves it.
        self.run(["chown", *(["-R"] if recursive else []), f"{self._db_user}:", str(path)], as_db_user=True)

    def make_private_dir(self, path: Path) -> Path:
        self.run(["mkdir", "-p", "--", str(path)], as_db_user=True, timeout=60)
        self.run(["chmod", "700", "--", str(path)], as_db_user=True, timeout=60)
        return path


def _drain_stderr(channel: Any, errors: list[bytes]) -> None:
    while True:
        try:
            data = channel.recv_stderr(_CHUNK)
        except TimeoutError:
            if channel.closed or channel.exit_status_ready() and not channel.recv_stderr_ready():
                return
            continue
        except (OSError, EOFError):
            return
        if not data:
            return
        errors.append(data)


def _sudo_hint(stderr: str, db_user: str) -> str:
    if "sudo" in stderr and ("password is required" in stderr or "not allowed" in stderr or "not found" in stderr):
        return (
            f"\nhint: the SSH login is not {db_user}: let it run commands as {db_user} through sudo without a "
            f"password, or log in as {db_user} (the connection's login)"
        )
    return ""
