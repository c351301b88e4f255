"""A PostgreSQL node as failover sees it: how to reach it, its health, and whether it accepts writes.

Every function works over psycopg connections (plus a :class:`~drflow.hosts.Host` where the server's
state must be asked) and returns a JSON-able dict; an unreachable node is a finding, not an error.

What "cannot accept writes" means here (the split-brain guard, ``write_state``):

* reachable and in recovery → ``in-recovery``;
* reachable, not in recovery, and a fresh session's probe ``BEGIN; CREATE TEMP TABLE …; ROLLBACK``
  is refused as read-only → ``read-only`` (what an application connecting now would meet);
* the probe succeeds → ``writable``;
* unreachable, and the host confirms that no server runs in the node's data directory
  (``pg_ctl status`` exit 3) → ``stopped``;
* unreachable otherwise → ``unknown``. An old primary we cannot reach may still take writes from
  clients that can (a network partition), so, as in Patroni, this blocks promotion: fence it while
  reachable, stop it on its host, or approve the override.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from drflow.engines.postgres.bindir import find_bin_dir
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.hosts import Host, HostError, LocalHost

if TYPE_CHECKING:
    import psycopg

APPLICATION_NAME = "drflow-failover"
CONNECT_TIMEOUT_S = 5
WRITE_PROBE = "CREATE TEMP TABLE drflow_write_probe (id int)"
WriteState = Literal["writable", "read-only", "in-recovery", "stopped", "unknown"]
SAFE_STATES: frozenset[str] = frozenset({"read-only", "in-recovery", "stopped"})
"""The states in which a node is proven not to take writes."""


@dataclass(frozen=True)
class Node:
    """A database node as failover sees it: how to connect, and (for stop/rebuild) where its data lives."""

    name: str
    conn: PgConnInfo
    data_dir: Path | None = None
    host: Host = field(default_factory=LocalHost, compare=False)
    bin_dir: Path = field(default_factory=find_bin_dir, compare=False)

    def describe(self) -> str:
        return f"{self.name} ({self.conn.host}:{self.conn.port})"


NodeLike = Node | PgConnInfo


def as_node(value: NodeLike, name: str | None = None) -> Node:
    if isinstance(value, Node):
        return value
    return Node(name=name or value.describe(), conn=value)


def connect(conn: PgConnInfo, timeout: int = CONNECT_TIMEOUT_S) -> psycopg.Connection[Any]:
    import psycopg

    kwargs = {**conn.libpq_kwargs(connect_timeout=timeout), "application_name": APPLICATION_NAME}
    return psycopg.connect(**kwargs, autocommit=True)


_HEALTH_SQL = """
select pg_is_in_recovery(),
       current_setting('server_version'),
       current_setting('server_version_num')::int,
       current_setting('default_transaction_read_only'),
       current_setting('transaction_read_only'),
       case when pg_is_in_recovery() then null else pg_current_wal_lsn()::text end,
       pg_last_wal_receive_lsn()::text,
       pg_last_wal_replay_lsn()::text,
       pg_last_xact_replay_timestamp(),
       now(),
       case when pg_is_in_recovery() then null
            else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end,
       (select received_tli from pg_stat_wal_receiver),
       (select timeline_id from pg_control_checkpoint()),
       (select status from pg_stat_wal_receiver),
       (select sender_host || ':' || sender_port from pg_stat_wal_receiver),
       case when pg_is_in_recovery() then pg_get_wal_replay_pause_state() end
"""


def node_health(conn: NodeLike) -> dict[str, Any]:
    """Reachability, role, read-only state, LSNs, timeline and version of one node; never raises
    for an unreachable node (``reachable: False`` and ``error``)."""
    import psycopg

    node = as_node(conn)
    facts: dict[str, Any] = {"node": node.name, "server": node.conn.describe(), "reachable": False}
    try:
        with connect(node.conn) as db:
            row = db.execute(_HEALTH_SQL).fetchone()
    except psycopg.Error as exc:
        facts["error"] = str(exc).strip() or type(exc).__name__
        return facts
    assert row is not None
    (in_recovery, version, version_num, default_ro, txn_ro, current_lsn, receive_lsn, replay_lsn, replay_at, now) = row[
        :10
    ]
    primary_tli, received_tli, checkpoint_tli, receiver_status, sender, pause_state = row[10:]
    facts.update(
        reachable=True,
        in_recovery=bool(in_recovery),
        read_only=bool(in_recovery) or default_ro == "on" or txn_ro == "on",
        default_transaction_read_only=default_ro == "on",
        version=str(version).split()[0],
        version_num=int(version_num),
        current_lsn=current_lsn,
        receive_lsn=receive_lsn,
        replay_lsn=replay_lsn,
        last_replay_at=replay_at.isoformat() if replay_at else None,
        checked_at=now.isoformat(),
        seconds_since_last_replay=round((now - replay_at).total_seconds(), 3) if replay_at else None,
        timeline=int(primary_tli if primary_tli is not None else received_tli or checkpoint_tli),
        wal_receiver=receiver_status,
        upstream=sender,
        replay_pause_state=pause_state,
    )
    return facts


def probe_write(db: psycopg.Connection[Any]) -> str | None:
    """None when a new transaction may write, else the server's reason why not.

    A role without the TEMP privilege cannot run the probe; it then counts as writable when the
    transaction is not read-only: the guard errs on the side of "may write".
    """
    import psycopg

    try:
        with db.transaction(force_rollback=True):
            row = db.execute("select current_setting('transaction_read_only')").fetchone()
            if row and row[0] == "on":
                return "transaction_read_only is on in a new transaction"
            db.execute(WRITE_PROBE)
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        return str(exc).strip()
    except psycopg.errors.InsufficientPrivilege:
        return None
    return None


def write_state(node: NodeLike) -> dict[str, Any]:
    """Whether ``node`` accepts writes now; the states are explained in the module docstring."""
    import psycopg

    node = as_node(node)
    result: dict[str, Any] = {"node": node.name, "server": node.conn.describe()}
    try:
        with connect(node.conn) as db:
            row = db.execute("select pg_is_in_recovery()").fetchone()
            if row and row[0]:
                return {**result, "state": "in-recovery", "detail": "the server is in recovery (a standby)"}
            refused = probe_write(db)
    except psycopg.Error as exc:
        error = str(exc).strip() or type(exc).__name__
        return {**result, **_unreachable_state(node, error)}
    if refused is None:
        return {**result, "state": "writable", "detail": "a new session can write"}
    return {**result, "state": "read-only", "detail": f"a new session's write is refused: {refused}"}


def _unreachable_state(node: Node, error: str) -> dict[str, Any]:
    if node.data_dir is None:
        return {
            "state": "unknown",
            "detail": f"unreachable ({error}) and no data_directory is known to ask its host",
        }
    running = server_running(node)
    if running is False:
        return {
            "state": "stopped",
            "detail": f"unreachable ({error}); the host reports no server running in {node.data_dir}",
        }
    what = "a server still runs there" if running else "the host could not tell whether a server runs there"
    return {"state": "unknown", "detail": f"unreachable ({error}), but {what} ({node.data_dir})"}


def server_running(node: Node) -> bool | None:
    """``pg_ctl status`` on the node's host: True, False (exit 3: no server), or None (cannot tell)."""
    if node.data_dir is None:
        return None
    try:
        result = node.host.run(
            [str(node.bin_dir / "pg_ctl"), "status", "-D", str(node.data_dir)], as_db_user=True, check=False, timeout=30
        )
    except HostError:
        return None
    return {0: True, 3: False}.get(result.returncode)


def accepts_writes(node: NodeLike) -> bool:
    """The split-brain guard's question: reachable, not in recovery, and a new session may write
    (checked with a rolled-back ``CREATE TEMP TABLE``, so settings a client could not see don't count).

    False also for an unreachable node; :func:`promote` uses :func:`write_state`, which keeps
    "unreachable" apart from "refuses writes".
    """
    return bool(write_state(node)["state"] == "writable")
