"""Promotion safety for PostgreSQL failover: node health, the lag gate, fencing, the split-brain guard, promotion.

Every function works over psycopg connections (plus a :class:`~drflow.hosts.Host` where a server
must be stopped) and returns a JSON-able dict. Every refusal raises a :class:`Refused` subclass whose
message reads ``refused: <why>; to proceed: <what would unblock it>``.

What "cannot accept writes" means here (the split-brain guard, :func:`write_state`):

* reachable and in recovery → ``in-recovery``;
* reachable, not in recovery, and a fresh session's probe ``BEGIN; CREATE TEMP TABLE …; ROLLBACK``
  is refused as read-only → ``read-only`` (what an application connecting now would meet);
* the probe succeeds → ``writable``;
* unreachable, and the host confirms that no server runs in the node's data directory
  (``pg_ctl status`` exit 3) → ``stopped``;
* unreachable otherwise → ``unknown``. An old primary we cannot reach may still take writes from
  clients that can (a network partition), so, as in Patroni, this blocks promotion: fence it while
  reachable, stop it on its host, or approve the override.

The ``read-only`` fence (``ALTER SYSTEM SET default_transaction_read_only``) stops applications that
do not override the setting; a client that runs ``SET default_transaction_read_only = off`` can still
write. ``stop`` is the hard fence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from drflow.engines.postgres.bindir import find_bin_dir
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.lsn import parse_lsn
from drflow.hosts import Host, HostError, LocalHost
from drflow.units import human_duration

if TYPE_CHECKING:
    import psycopg

APPLICATION_NAME = "drflow-failover"
CONNECT_TIMEOUT_S = 5
WRITE_PROBE = "CREATE TEMP TABLE drflow_write_probe (id int)"
FenceMethod = Literal["read-only", "stop"]
WriteState = Literal["writable", "read-only", "in-recovery", "stopped", "unknown"]
SAFE_STATES: frozenset[str] = frozenset({"read-only", "in-recovery", "stopped"})


class Refused(RuntimeError):
    """A safety check refused a step: ``why`` it did, and ``unblock`` (what would let it proceed)."""

    def __init__(self, why: str, unblock: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"refused: {why}; to proceed: {unblock}")
        self.why = why
        self.unblock = unblock
        self.details = details or {}


class ReplicaUnreachable(Refused):
    pass


class NotInRecovery(Refused):
    pass


class ReplayPaused(Refused):
    pass


class LagExceeded(Refused):
    pass


class LagUnknown(Refused):
    pass


class SplitBrainRisk(Refused):
    """The node that must be fenced accepts writes, or nobody can tell whether it does."""


class FenceFailed(Refused):
    pass


class PromotionFailed(RuntimeError):
    """pg_promote() ran but the node did not become a writable primary in time."""


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


# -- facts -------------------------------------------------------------------------------------

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


def _probe_write(db: psycopg.Connection[Any]) -> str | None:
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
            refused = _probe_write(db)
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


# -- the lag gate ------------------------------------------------------------------------------


def gate_lag(
    primary: NodeLike | None,
    replica: NodeLike,
    max_lag_s: float,
    *,
    settle_s: float = 2.0,
) -> dict[str, Any]:
    """Refuse unless ``replica`` is reachable, in recovery, replaying (not paused) and at most
    ``max_lag_s`` behind ``primary``; return the measurement.

    With the primary reachable (and not in recovery) the LSNs decide: replay at or past the
    primary's current LSN is no lag, whatever the last replayed commit's age; behind, the replica
    gets ``settle_s`` to catch up (it may be applying the last records), and only then the age of
    its last replayed commit counts. With the primary unreachable, ``now() -
    pg_last_xact_replay_timestamp()`` is an upper bound of the data that would be lost, and the
    result says so.
    """
    replica = as_node(replica, "replica")
    health = node_health(replica)
    name = replica.describe()
    if not health["reachable"]:
        raise ReplicaUnreachable(
            f"replica {name} is unreachable ({health['error']}), so it cannot take over",
            "start it or fix the network or its Airflow connection and retry, or promote another replica",
            {"replica": health},
        )
    if not health["in_recovery"]:
        raise NotInRecovery(
            f"{name} is not in recovery: it is a primary already (promoted earlier, or started without "
            "standby.signal), so there is no replica there to promote",
            "find out which node is the primary now; if this one should follow it, rebuild it as a replica "
            "(rebuild_replica) and retry",
            {"replica": health},
        )
    if health["replay_pause_state"] in ("paused", "pause requested"):
        raise ReplayPaused(
            f"WAL replay is paused on replica {name} (pg_get_wal_replay_pause_state() = "
            f"'{health['replay_pause_state']}'): it receives WAL but applies none, so its data gets older",
            f"unless it was paused on purpose, run SELECT pg_wal_replay_resume(); on {name}, wait until it "
            "catches up, and retry",
            {"replica": health},
        )
    measured = measure_lag(primary, replica, health, settle_s=settle_s)
    result = {"replica": health, **measured, "max_lag_s": max_lag_s}
    lag = measured["lag_s"]
    if lag is None:
        raise LagUnknown(
            f"cannot tell how far replica {name} is behind: {measured['method']}, and it has replayed no "
            "transaction since it started",
            "make the primary reachable so LSNs can be compared (or wait for the replica to replay a "
            "commit) and retry, or approve the override (override_safety) if the loss is acceptable",
            result,
        )
    if lag > max_lag_s:
        wal = f", {measured['lag_bytes']} bytes of WAL" if measured.get("lag_bytes") else ""
        bound = " at most" if measured["upper_bound"] else ""
        raise LagExceeded(
            f"replica {name} is{bound} {human_duration(lag)} behind the primary{wal} ({measured['method']}), "
            f"more than the allowed {human_duration(max_lag_s)} (the RPO): promoting it now could lose the "
            "newest commits",
            "wait until it catches up (look for long queries on it, or a slow disk or network) and retry, "
            "or approve the override (override_safety) if losing them is acceptable",
            result,
        )
    return result


def measure_lag(
    primary: NodeLike | None, replica: Node, health: dict[str, Any], *, settle_s: float = 2.0
) -> dict[str, Any]:
    """How far ``replica`` (whose :func:`node_health` is ``health``) is behind; see :func:`gate_lag`."""
    reference = node_health(primary) if primary is not None else None
    usable = reference is not None and reference["reachable"] and not reference["in_recovery"]
    if reference is None or not usable:
        if reference is None:
            why = "no primary given"
        elif not reference["reachable"]:
            why = f"primary {reference['node']} unreachable"
        else:
            why = f"{reference['node']} is in recovery, no primary"
        lag = health["seconds_since_last_replay"]
        return {
            "primary": reference,
            "lag_s": lag,
            "lag_bytes": None,
            "upper_bound": True,
            "method": f"{why}: now() - pg_last_xact_replay_timestamp() on the replica, an upper bound",
        }
    primary_lsn = parse_lsn(reference["current_lsn"])
    replay_lsn = parse_lsn(health["replay_lsn"]) if health["replay_lsn"] else 0
    if replay_lsn >= primary_lsn:
        return {"primary": reference, "lag_s": 0.0, "lag_bytes": 0, "upper_bound": False, "method": "LSNs equal"}
    started = time.monotonic()
    with connect(replica.conn) as db:
        while time.monotonic() - started < settle_s:
            time.sleep(0.05)
            row = db.execute("select pg_last_wal_replay_lsn()::text").fetchone()
            if row and row[0] and parse_lsn(row[0]) >= primary_lsn:
                return {
                    "primary": reference,
                    "lag_s": round(time.monotonic() - started, 3),
                    "lag_bytes": primary_lsn - replay_lsn,
                    "upper_bound": False,
                    "method": "behind by LSN, caught up while measured",
                }
    since = health["seconds_since_last_replay"]
    return {
        "primary": reference,
        "lag_s": None if since is None else round(since + time.monotonic() - started, 3),
        "lag_bytes": primary_lsn - replay_lsn,
        "upper_bound": False,
        "method": "behind by LSN: age of the last replayed commit",
    }


# -- fencing -----------------------------------------------------------------------------------


def fence(node: Node, method: FenceMethod, *, timeout: float = 60.0) -> dict[str, Any]:
    """Stop ``node`` from accepting writes, and prove it; raise :class:`FenceFailed` otherwise.

    ``read-only``: ``ALTER SYSTEM SET default_transaction_read_only = on``, reload, terminate the
    other client backends (not WAL senders: the replicas keep streaming), then check that a new
    session's write is refused. ``stop``: ``pg_ctl stop -m fast`` (``immediate`` if that fails) on
    the node's host, then check that no server runs in its data directory and it does not answer.

    Fencing counts as done only when it is proven: reachable and refusing writes, or stopped as
    the host confirms. An unreachable node whose host cannot confirm it is down is refused.
    """
    started = time.monotonic()
    if method == "read-only":
        result = _fence_read_only(node, timeout)
    elif method == "stop":
        result = _fence_stop(node, timeout)
    else:
        raise ValueError(f"unknown fence method {method!r}; use 'read-only' or 'stop'")
    return {"node": node.name, "method": method, "fenced": True, **result, "seconds": _since(started)}


def _fence_read_only(node: Node, timeout: float) -> dict[str, Any]:
    import psycopg

    try:
        with connect(node.conn) as db:
            db.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            db.execute("select pg_reload_conf()")
    except psycopg.Error as exc:
        state = write_state(node)
        if state["state"] == "stopped":
            return {"state": state, "note": "the node is down (its host confirms), nothing to make read-only"}
        raise FenceFailed(
            f"cannot make {node.describe()} read-only: {str(exc).strip()}",
            "make it reachable and retry; or fence it with method 'stop' on its host (needs its "
            "data_directory); or, if you know it is down for good (host off, region gone), approve the "
            "override (override_safety)",
            {"state": state},
        ) from exc
    deadline = time.monotonic() + min(timeout, 10.0)
    # pg_reload_conf() only signals the postmaster: wait until new sessions see the setting.
    while _new_session_setting(node) != "on":
        if time.monotonic() > deadline:
            raise FenceFailed(
                f"{node.describe()} still starts sessions with default_transaction_read_only off after "
                "ALTER SYSTEM and a reload (is it set on the command line or per role/database?)",
                "remove the overriding setting (ALTER ROLE/DATABASE ... RESET default_transaction_read_only) "
                "or fence with method 'stop'",
            )
        time.sleep(0.05)
    with connect(node.conn) as db:
        rows = db.execute(
            "select pid, pg_terminate_backend(pid) from pg_stat_activity"
            " where backend_type = 'client backend' and pid <> pg_backend_pid()"
        ).fetchall()
    state = write_state(node)
    if state["state"] not in SAFE_STATES:
        raise FenceFailed(
            f"{node.describe()} still accepts writes after being made read-only ({state['detail']})",
            "fence it with method 'stop', or find what re-enables writes (a role or database setting)",
            {"state": state},
        )
    return {"terminated_backends": sum(1 for _, ok in rows if ok), "state": state}


def _new_session_setting(node: Node) -> str | None:
    with connect(node.conn) as db:
        row = db.execute("select current_setting('default_transaction_read_only')").fetchone()
    return str(row[0]) if row else None


def _fence_stop(node: Node, timeout: float) -> dict[str, Any]:
    import psycopg

    if node.data_dir is None:
        raise FenceFailed(
            f"fencing {node.describe()} by stopping it needs its data directory, and none is known",
            "set data_directory of this node in the spec, or fence it with method 'read-only'",
        )
    try:
        with connect(node.conn) as db:
            row = db.execute("select current_setting('data_directory')").fetchone()
    except psycopg.Error:
        row = None  # unreachable: the host decides below
    if row is not None and Path(str(row[0])).resolve() != node.data_dir.resolve():
        raise FenceFailed(
            f"{node.describe()} runs from {row[0]}, not from {node.data_dir} as the spec says; stopping "
            "that directory would not stop this server",
            "correct data_directory of this node in the spec and retry",
        )
    pg_ctl = str(node.bin_dir / "pg_ctl")
    mode = "fast"
    if server_running(node):
        try:
            node.host.run(
                [pg_ctl, "stop", "-D", str(node.data_dir), "-m", "fast", "-w", "-t", str(int(timeout))],
                as_db_user=True,
                timeout=timeout + 15,
            )
        except HostError:
            mode = "immediate"
            node.host.run(
                [pg_ctl, "stop", "-D", str(node.data_dir), "-m", "immediate", "-w", "-t", "30"],
                as_db_user=True,
                timeout=45,
                check=False,
            )
    else:
        mode = "already stopped"
    state = write_state(node)
    if state["state"] != "stopped":
        raise FenceFailed(
            f"{node.describe()} is not proven stopped after pg_ctl stop ({state['detail']})",
            f"stop it by hand on its host (pg_ctl stop -D {node.data_dir} -m immediate, or kill the postmaster "
            "in postmaster.pid) and retry, or approve the override (override_safety) if you know it is down",
            {"state": state},
        )
    return {"stop_mode": mode, "state": state}


def unfence(node: NodeLike) -> bool:
    """Undo a read-only fence (``ALTER SYSTEM RESET default_transaction_read_only``); True if it was set."""
    node = as_node(node)
    with connect(node.conn) as db:
        row = db.execute(
            "select setting, source from pg_settings where name = 'default_transaction_read_only'"
        ).fetchone()
        if row is None or row[0] != "on":
            return False
        db.execute("ALTER SYSTEM RESET default_transaction_read_only")
        db.execute("select pg_reload_conf()")
    return True


# -- promotion ---------------------------------------------------------------------------------


def check_fence(fence_node: NodeLike | None) -> dict[str, Any] | None:
    """The split-brain guard: raise :class:`SplitBrainRisk` unless ``fence_node`` is proven not to
    accept writes (read-only, in recovery, or stopped)."""
    if fence_node is None:
        return None
    node = as_node(fence_node)
    state = write_state(node)
    if state["state"] == "writable":
        raise SplitBrainRisk(
            f"{node.describe()} still accepts writes ({state['detail']}); promoting now would leave two "
            "writable primaries (split brain)",
            f"fence {node.name} first (method read-only, or stop), or, if it must stay writable, approve the "
            "override (override_safety)",
            {"fence_node": state},
        )
    if state["state"] not in SAFE_STATES:
        raise SplitBrainRisk(
            f"{node.describe()} is {state['detail']}: nobody can tell whether it still takes writes from "
            "clients that can reach it (a network partition would leave it writable: split brain)",
            "make it reachable and fence it, or stop it on its host (fence method stop, needs its "
            "data_directory), or, if you know it is down (host off, region gone), approve the override "
            "(override_safety)",
            {"fence_node": state},
        )
    return state


def promote(
    replica: Node,
    *,
    fence_node: NodeLike | None,
    max_lag_s: float,
    primary: NodeLike | None = None,
    override: bool = False,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Promote ``replica`` after the guards, and wait until it is a writable primary.

    Guards (all skipped with ``override``): :func:`gate_lag` against ``primary`` (default: the
    fence node), then :func:`check_fence` on ``fence_node``. Then ``pg_promote(wait => true)``,
    undoing a read-only fence left in the replica's configuration, and polling until a new
    session's write succeeds. A replica that is out of recovery already (a retry after a promotion
    that succeeded) is only checked for writability while the guard on the fence node holds.
    Returns the guards' findings and timings (seconds).
    """
    started = time.monotonic()
    guards: dict[str, Any] = {"overridden": override}
    if not override:
        already = _already_promoted(replica, fence_node)
        if already is not None:
            guards["fence"] = already
            writable_at = _wait_writable(replica, timeout)
            return _promotion_result(replica, guards, started, started, started, writable_at, already=True)
        guards["lag"] = gate_lag(primary if primary is not None else fence_node, replica, max_lag_s)
        guards["fence"] = check_fence(fence_node)
    guarded_at = time.monotonic()
    with connect(replica.conn) as db:
        row = db.execute("select pg_is_in_recovery()").fetchone()
        if row and row[0]:
            done = db.execute("select pg_promote(wait => true, wait_seconds => %s)", (max(1, int(timeout)),)).fetchone()
            if not (done and done[0]):
                raise PromotionFailed(
                    f"{replica.describe()} did not finish promotion within {timeout:.0f}s; read its server log "
                    "(is it still replaying a long WAL backlog?) and retry, which waits for it again"
                )
    promoted_at = time.monotonic()
    guards["cleared_read_only"] = unfence(replica)
    writable_at = _wait_writable(replica, timeout)
    return _promotion_result(replica, guards, started, guarded_at, promoted_at, writable_at, already=False)


def _already_promoted(replica: Node, fence_node: NodeLike | None) -> dict[str, Any] | None:
    """The fence node's safe state, if ``replica`` is out of recovery already and is not the fence node."""
    health = node_health(replica)
    if not health["reachable"] or health["in_recovery"]:
        return None
    if fence_node is None:
        return None
    fence = as_node(fence_node)
    if (fence.conn.host, fence.conn.port) == (replica.conn.host, replica.conn.port):
        return None
    return check_fence(fence)


def _wait_writable(replica: Node, timeout: float) -> float:
    import psycopg

    deadline = time.monotonic() + timeout
    last = "not tried"
    while True:
        try:
            with connect(replica.conn) as db:
                row = db.execute("select pg_is_in_recovery()").fetchone()
                refused = "still in recovery" if row and row[0] else _probe_write(db)
        except psycopg.Error as exc:
            refused = str(exc).strip()
        if refused is None:
            return time.monotonic()
        last = refused
        if time.monotonic() > deadline:
            raise PromotionFailed(
                f"{replica.describe()} was promoted but is not writable after {timeout:.0f}s ({last}); "
                "check default_transaction_read_only in its postgresql.conf and its server log"
            )
        time.sleep(0.05)


def _promotion_result(
    replica: Node,
    guards: dict[str, Any],
    started: float,
    guarded_at: float,
    promoted_at: float,
    writable_at: float,
    *,
    already: bool,
) -> dict[str, Any]:
    health = node_health(replica)
    return {
        "node": replica.name,
        "server": replica.conn.describe(),
        "already_promoted": already,
        "overridden": guards["overridden"],
        "guards": guards,
        "timeline": health.get("timeline"),
        "lsn": health.get("current_lsn"),
        "guard_s": round(guarded_at - started, 3),
        "promote_s": round(promoted_at - guarded_at, 3),
        "writable_s": round(writable_at - promoted_at, 3),
        "total_s": round(writable_at - started, 3),
    }


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
