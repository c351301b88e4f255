"""Fencing a node so it takes no writes, and the split-brain guard that checks it before a promotion.

The ``read-only`` fence (``ALTER SYSTEM SET default_transaction_read_only``) stops applications that
do not override the setting; a client that runs ``SET default_transaction_read_only = off`` can still
write. ``stop`` is the hard fence.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from drflow.engines.postgres.node import SAFE_STATES, Node, NodeLike, as_node, connect, server_running, write_state
from drflow.engines.postgres.refusal import FenceFailed, SplitBrainRisk
from drflow.hosts import HostError

FenceMethod = Literal["read-only", "stop"]


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


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
