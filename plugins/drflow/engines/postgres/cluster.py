"""A PostgreSQL cluster whose data directory lives on a host we can run commands on.

Used for the sandbox, for test clusters and for servers started from restored
backups. Configuration goes into ``postgresql.auto.conf`` (read last by the
server), which is read and written locally: the data directory must be on the
worker, whatever the ``host`` runs commands through.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from drflow.engines.postgres.bindir import find_bin_dir
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.hosts import Host, HostError, LocalHost, tail

AUTO_CONF = "postgresql.auto.conf"
SettingValue = str | int | float | bool

_GUC_NAME = re.compile(r"^[a-z_][a-z0-9_.]*$")
# Ports never handed out by free_port: the machine's own server.
_RESERVED_PORTS = frozenset({5432})


class ClusterError(RuntimeError):
    """Creating, configuring, starting or stopping a cluster failed."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (there is a small race until the server binds it)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _RESERVED_PORTS:
            return port
    raise ClusterError("could not find a free TCP port on 127.0.0.1")


def format_setting(value: SettingValue) -> str:
    """Render a value for postgresql.conf: numbers and booleans bare, everything else quoted."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"setting value may not contain line breaks or NUL: {value!r}")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def write_settings(conf_file: Path, settings: Mapping[str, SettingValue]) -> None:
    """Set ``settings`` in ``conf_file``, replacing earlier lines for the same names."""
    for name in settings:
        if not _GUC_NAME.match(name):
            raise ValueError(f"not a valid PostgreSQL setting name: {name!r}")
    names = {name.lower() for name in settings}
    old_lines = conf_file.read_text().splitlines() if conf_file.exists() else []
    kept = [line for line in old_lines if _assigned_name(line) not in names]
    new = [f"{name} = {format_setting(value)}" for name, value in settings.items()]
    # Truncating in place keeps the file's owner (the db user) when we run as root.
    with conf_file.open("w") as fh:
        fh.write("\n".join([*kept, *new]) + "\n")


def _assigned_name(line: str) -> str | None:
    match = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?", line)
    if not match or line.lstrip().startswith("#"):
        return None
    return match.group(1).lower()


def wait_until_accepting(conninfo: PgConnInfo, timeout: float = 30.0, interval: float = 0.1) -> None:
    """Block until ``SELECT 1`` succeeds on ``conninfo`` or raise :class:`ClusterError`."""
    import psycopg  # here, not at import: the incident CLI's restore must not pay for it

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        remaining = deadline - time.monotonic()
        try:
            kwargs = conninfo.libpq_kwargs(connect_timeout=max(2, int(remaining) + 1))
            with psycopg.connect(**kwargs, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last_error = exc
        if time.monotonic() + interval > deadline:
            raise ClusterError(
                f"server at {conninfo.describe()} did not accept connections within {timeout}s: "
                f"{last_error}; check the server log"
            )
        time.sleep(interval)


@dataclass
class LocalCluster:
    """One PostgreSQL data directory plus how to run its server.

    ``port`` and ``socket_dir`` are (re)applied on every :meth:`start`, so the
    object, not an earlier configuration, decides where the server listens.
    """

    data_dir: Path
    port: int
    socket_dir: Path
    bin_dir: Path = field(default_factory=find_bin_dir)
    host: Host = field(default_factory=LocalHost)
    superuser: str = "postgres"
    log_file: Path | None = None
    """Server log (pg_ctl -l); defaults to ``<socket_dir>/postgres-<port>.log``."""

    @property
    def server_log(self) -> Path:
        return self.log_file or self.socket_dir / f"postgres-{self.port}.log"

    def bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def conninfo(self, dbname: str = "postgres") -> PgConnInfo:
        return PgConnInfo(host="127.0.0.1", port=self.port, user=self.superuser, dbname=dbname)

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self, *, auth: str = "trust", no_sync: bool = False, **settings: SettingValue) -> None:
        """``initdb`` (data checksums on) and write replication-ready settings plus ``settings``.

        ``auth=trust`` is for sandbox and test clusters only.
        """
        if self.is_initialized():
            raise ClusterError(f"{self.data_dir} already holds a cluster; remove it or reuse it")
        self.host.make_private_dir(self.data_dir)
        argv = [
            self.bin("initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.superuser,
            f"--auth={auth}",
            "--data-checksums",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if no_sync:
            argv.append("--no-sync")
        try:
            self.host.run(argv, as_db_user=True, timeout=300)
        except HostError as exc:
            raise ClusterError(f"initdb of {self.data_dir} failed: {exc}") from exc
        self.configure(
            wal_level="replica",
            max_wal_senders=10,
            max_replication_slots=10,
            hot_standby=True,
            wal_keep_size="128MB",
            **settings,
        )

    def configure(self, **settings: SettingValue) -> None:
        """Set ``settings`` in postgresql.auto.conf (takes effect on the next start or reload)."""
        if not self.data_dir.is_dir():
            raise ClusterError(f"no data directory at {self.data_dir}; run init() first")
        conf = self.data_dir / AUTO_CONF
        existed = conf.exists()
        write_settings(conf, settings)
        if not existed:
            self.host.chown_to_db_user(conf)

    def is_running(self) -> bool:
        result = self.host.run([self.bin("pg_ctl"), "status", "-D", str(self.data_dir)], as_db_user=True, check=False)
        return result.returncode == 0

    def running_port(self) -> int | None:
        """The port the running server listens on (from postmaster.pid), or None if it is down."""
        if not self.is_running():
            return None
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it accepts connections (after any WAL replay)."""
        if not self.is_initialized():
            raise ClusterError(f"no cluster in {self.data_dir}; run init() or lay out a backup first")
        if self.is_running():
            wait_until_accepting(self.conninfo(), timeout)
            return
        self.host.make_private_dir(self.socket_dir)
        self.configure(
            port=self.port,
            listen_addresses="127.0.0.1",
            unix_socket_directories=str(self.socket_dir),
        )
        argv = [
            self.bin("pg_ctl"),
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.server_log),
            "-w",
            "-t",
            str(max(1, int(timeout))),
        ]
        try:
            self.host.run(argv, as_db_user=True, timeout=timeout + 15)
        except HostError as exc:
            raise ClusterError(
                f"could not start the server in {self.data_dir} on port {self.port}: {exc}\n"
                f"server log {self.server_log}:\n{self.log_tail()}\n"
                "is the port already taken, or is a server from an earlier run still up?"
            ) from exc
        wait_until_accepting(self.conninfo(), timeout)

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast", timeout: float = 60.0) -> None:
        """Stop the server if it runs; ``immediate`` skips the shutdown checkpoint (a crash)."""
        if not self.data_dir.is_dir() or not self.is_running():
            return
        argv = [self.bin("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w"]
        argv += ["-t", str(max(1, int(timeout)))]
        try:
            self.host.run(argv, as_db_user=True, timeout=timeout + 15)
        except HostError as exc:
            raise ClusterError(
                f"could not stop the server in {self.data_dir} ({mode}): {exc}\n"
                "try mode='immediate', or find the postmaster pid in postmaster.pid"
            ) from exc

    def log_tail(self, lines: int = 20) -> str:
        try:
            return tail(self.server_log.read_text(errors="replace"), lines)
        except OSError:
            return "(no server log)"


def create_replica(
    primary: LocalCluster,
    data_dir: Path,
    port: int,
    slot_name: str,
    *,
    socket_dir: Path | None = None,
    application_name: str | None = None,
    timeout: float = 120.0,
    sync: bool = True,
) -> LocalCluster:
    """Clone ``primary`` with ``pg_basebackup -R -X stream -C -S slot`` and start it as a hot standby.

    The standby shows up in the primary's ``pg_stat_replication`` as ``application_name``
    (default: the slot name). An inactive slot of the same name left by an earlier replica is
    dropped first. ``sync=False`` (``--no-sync``) does not wait for the copy to reach the disk: for
    throw-away clusters only (the sandbox).
    """
    from psycopg.conninfo import make_conninfo

    if not primary.is_running():
        raise ClusterError(f"primary in {primary.data_dir} is not running; start it first")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ClusterError(f"replica data directory {data_dir} is not empty; remove it first")
    _drop_stale_slot(primary.conninfo(), slot_name)
    replica = LocalCluster(
        data_dir=data_dir,
        port=port,
        socket_dir=socket_dir or data_dir.with_name(f"{data_dir.name}-run"),
        bin_dir=primary.bin_dir,
        host=primary.host,
        superuser=primary.superuser,
    )
    primary.host.make_private_dir(data_dir)
    conn = primary.conninfo()
    argv = [
        primary.bin("pg_basebackup"),
        "-D",
        str(data_dir),
        "-R",
        "-X",
        "stream",
        "-C",
        "-S",
        slot_name,
        "--checkpoint=fast",
        "--no-password",
        *([] if sync else ["--no-sync"]),
        "-d",
        # -R copies these parameters into the standby's primary_conninfo.
        make_conninfo(conn.dsn(), application_name=application_name or slot_name),
    ]
    try:
        primary.host.run(argv, as_db_user=True, env=conn.env(), timeout=timeout)
    except HostError as exc:
        primary.host.run(["find", str(data_dir), "-mindepth", "1", "-delete"], check=False)
        raise ClusterError(
            f"cloning {conn.describe()} into {data_dir} failed: {exc}\n"
            "is the primary reachable, with a replication line in pg_hba.conf and free wal senders?"
        ) from exc
    replica.configure(hot_standby=True)
    replica.start(timeout)
    return replica


def _drop_stale_slot(conninfo: PgConnInfo, slot_name: str) -> None:
    import psycopg

    with psycopg.connect(**conninfo.libpq_kwargs(), autocommit=True) as conn:
        row = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot_name,)).fetchone()
        if row is None:
            return
        if row[0]:
            raise ClusterError(
                f"replication slot {slot_name!r} on {conninfo.describe()} is in use by another standby; "
                "choose another slot name or stop that standby"
            )
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot_name,))
