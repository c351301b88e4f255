"""The local sandbox PostgreSQL: a primary and one streaming replica under one root directory.

Layout of ``root`` (e.g. ``/var/tmp/drflow-sandbox-0-<hash>/pg``)::

    sandbox.json   ports, slot and bin dir chosen by the last ``up``
    primary/       data directory of the primary    (db user, mode 700)
    replica/       data directory of the replica    (db user, mode 700)
    run/           unix sockets and server logs     (db user, mode 700)

As root the servers run as ``postgres``; ``root`` itself stays owned by the
caller but must be reachable by that user.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import psycopg

from drflow.engines.postgres.bindir import find_bin_dir
from drflow.engines.postgres.cluster import LocalCluster, create_replica
from drflow.hosts import Host, LocalHost

DEFAULT_PRIMARY_PORT = 55432
DEFAULT_REPLICA_PORT = 55433
SLOT_NAME = "drflow_sandbox_replica"
STATE_FILE = "sandbox.json"
FAST_RESTART = {"recovery_init_sync_method": "syncfs"}
"""A server started after a crash or a pg_rewind first flushes its whole data directory: one syncfs() instead
of an fsync per file (seconds on this machine's disks for the sandbox's six databases); the replica's clone
and a rewind copy it. For the same reason the sandbox's initdb and clone do not flush what they write
(`--no-sync`): a sandbox is thrown away and made again (`down --purge`, `up`), the servers' own commits
are flushed as usual."""


class SandboxError(RuntimeError):
    """The sandbox cannot be brought up, inspected or torn down as asked."""


def up(
    root: Path,
    primary_port: int = DEFAULT_PRIMARY_PORT,
    replica_port: int = DEFAULT_REPLICA_PORT,
    *,
    bin_dir: Path | None = None,
    host: Host | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Create or start the primary and its replica; running servers are reused. Returns :func:`status`."""
    if primary_port == replica_port:
        raise SandboxError(f"primary and replica need different ports (both are {primary_port})")
    root = root.absolute()
    host = host or LocalHost()
    _prepare_root(root)
    bin_dir = bin_dir or find_bin_dir()
    primary, replica = _clusters(root, primary_port, replica_port, bin_dir, host)
    for cluster in (primary, replica):
        actual = cluster.running_port() if cluster.is_initialized() else None
        if actual is not None and actual != cluster.port:
            raise SandboxError(
                f"the sandbox server in {cluster.data_dir} already runs on port {actual}, "
                f"not {cluster.port}; run down first or ask for port {actual}"
            )
    _write_state(root, primary_port, replica_port, bin_dir)

    if not primary.is_initialized():
        _require_absent_or_empty(primary.data_dir)
        primary.init(no_sync=True, **FAST_RESTART)
    primary.start(timeout)

    if replica.is_initialized():
        if not replica.is_running():
            # The primary's port may have changed since the replica was cloned.
            replica.configure(
                primary_conninfo=f"{primary.conninfo().dsn()} application_name={SLOT_NAME}",
                primary_slot_name=SLOT_NAME,
            )
        replica.start(timeout)
    else:
        _require_absent_or_empty(replica.data_dir)
        create_replica(
            primary,
            replica.data_dir,
            replica_port,
            SLOT_NAME,
            socket_dir=replica.socket_dir,
            timeout=timeout,
            sync=False,
        )
    _replicate_synchronously(primary)
    return status(root)


def _replicate_synchronously(primary: LocalCluster) -> None:
    """The example spec's critical components need synchronous replication: the primary waits for the replica.

    Set on the primary only, after the replica was cloned, so a promoted replica does not wait for a standby
    it does not have. With the replica down, commits on the primary wait until it is back (as in production).
    """
    setting = f"FIRST 1 ({SLOT_NAME})"
    primary.configure(synchronous_standby_names=setting)
    with psycopg.connect(**primary.conninfo().libpq_kwargs(connect_timeout=5), autocommit=True) as conn:
        conn.execute("select pg_reload_conf()")
        # The replica streams a moment after it starts; `up` returns once it is the synchronous standby.
        deadline = time.monotonic() + 15
        query = "select count(*) from pg_stat_replication where application_name = %s and sync_state = 'sync'"
        while time.monotonic() < deadline:
            row = conn.execute(query, (SLOT_NAME,)).fetchone()
            if row and row[0]:
                return
            time.sleep(0.1)


def down(root: Path, *, purge: bool = False, host: Host | None = None) -> dict[str, Any]:
    """Stop replica then primary (fast shutdown; immediate with ``purge``, which then deletes ``root`` entirely)."""
    root = root.absolute()
    state = _read_state(root)
    stopped: list[str] = []
    if state is not None:
        primary, replica = _clusters(
            root, state["primary_port"], state["replica_port"], Path(state["bin_dir"]), host or LocalHost()
        )
        for name, cluster in (("replica", replica), ("primary", primary)):
            if cluster.is_initialized() and cluster.is_running():
                cluster.stop("immediate" if purge else "fast")  # no shutdown checkpoint for data about to go
                stopped.append(name)
    purged = False
    if purge and root.exists():
        if state is None and any(root.iterdir()):
            raise SandboxError(f"{root} has no {STATE_FILE}: not a sandbox, refusing to delete it")
        shutil.rmtree(root)
        purged = True
    return {"root": str(root), "stopped": stopped, "purged": purged}


def status(root: Path, *, host: Host | None = None) -> dict[str, Any]:
    """What runs, on which ports, and how replication stands (JSON-friendly)."""
    root = root.absolute()
    state = _read_state(root)
    if state is None:
        return {
            "root": str(root),
            "exists": False,
            "primary": {"running": False},
            "replica": {"running": False},
        }
    primary, replica = _clusters(
        root, state["primary_port"], state["replica_port"], Path(state["bin_dir"]), host or LocalHost()
    )
    result: dict[str, Any] = {
        "root": str(root),
        "exists": True,
        "primary": _node(primary),
        "replica": {**_node(replica), "slot": SLOT_NAME},
    }
    if result["primary"]["running"]:
        result["replication"] = _query(
            primary,
            "SELECT application_name, client_addr::text, state, sync_state, sent_lsn::text, "
            "replay_lsn::text, extract(epoch FROM replay_lag)::float8 AS replay_lag_s "
            "FROM pg_stat_replication ORDER BY application_name",
        )
        result["slots"] = _query(
            primary,
            "SELECT slot_name, slot_type, active, restart_lsn::text FROM pg_replication_slots ORDER BY 1",
        )
    if result["replica"]["running"]:
        rows = _query(
            replica,
            "SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_replay_lsn()::text AS replay_lsn, "
            "(SELECT status FROM pg_stat_wal_receiver) AS wal_receiver",
        )
        result["replica"].update(rows[0] if rows else {})
    return result


def clusters(root: Path, *, host: Host | None = None) -> tuple[LocalCluster, LocalCluster] | None:
    """The primary and replica of the sandbox under ``root`` as its last ``up`` laid them out (None: no sandbox)."""
    root = root.absolute()
    state = _read_state(root)
    if state is None:
        return None
    return _clusters(root, state["primary_port"], state["replica_port"], Path(state["bin_dir"]), host or LocalHost())


def _clusters(
    root: Path, primary_port: int, replica_port: int, bin_dir: Path, host: Host
) -> tuple[LocalCluster, LocalCluster]:
    run = root / "run"
    return (
        LocalCluster(root / "primary", primary_port, run, bin_dir, host),
        LocalCluster(root / "replica", replica_port, run, bin_dir, host),
    )


def _node(cluster: LocalCluster) -> dict[str, Any]:
    running = cluster.is_initialized() and cluster.is_running()
    return {
        "data_dir": str(cluster.data_dir),
        "initialized": cluster.is_initialized(),
        "running": running,
        "port": cluster.running_port() if running else cluster.port,
        "dsn": cluster.conninfo().dsn(),
        "log": str(cluster.server_log),
    }


def _query(cluster: LocalCluster, sql: str) -> list[dict[str, Any]]:
    try:
        with psycopg.connect(**cluster.conninfo().libpq_kwargs(connect_timeout=5), autocommit=True) as conn:
            cur = conn.execute(sql)
            names = [col.name for col in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    except psycopg.Error as exc:
        return [{"error": str(exc).strip()}]


def _prepare_root(root: Path) -> None:
    """Create ``root`` and make it and every directory we create traversable by the db user.

    Existing parents are left alone: if one blocks the db user, creating the data directories
    fails with a message naming it (see ``LocalHost.make_private_dir``).
    """
    created = [p for p in (root, *root.parents) if not p.exists()]
    root.mkdir(parents=True, exist_ok=True)
    for path in {*created, root}:
        if path.stat().st_uid == os.geteuid():
            path.chmod(path.stat().st_mode | 0o011)


def _require_absent_or_empty(path: Path) -> None:
    if path.exists() and any(path.iterdir()):
        raise SandboxError(
            f"{path} is neither a PostgreSQL data directory nor empty; remove it (or run down with purge) and try again"
        )


def _write_state(root: Path, primary_port: int, replica_port: int, bin_dir: Path) -> None:
    state = {
        "primary_port": primary_port,
        "replica_port": replica_port,
        "slot": SLOT_NAME,
        "bin_dir": str(bin_dir),
    }
    (root / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def _read_state(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SandboxError(f"cannot read {root / STATE_FILE}: {exc}; fix or delete it") from exc
    if not isinstance(data, dict) or not {"primary_port", "replica_port", "bin_dir"} <= data.keys():
        raise SandboxError(f"{root / STATE_FILE} is incomplete; delete it and run up again")
    return data
