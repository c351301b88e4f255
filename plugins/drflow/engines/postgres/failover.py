"""Promotion safety for PostgreSQL failover: node health, the lag gate, fencing, the split-brain guard, promotion.

The pieces: :mod:`~drflow.engines.postgres.node` (health, write state), :mod:`~drflow.engines.postgres.fence`
(fencing, the split-brain guard), :mod:`~drflow.engines.postgres.refusal` (why a step refused). Every
refusal raises a :class:`Refused` subclass whose message reads ``refused: <why>; to proceed: <what would
unblock it>``.
"""

from __future__ import annotations

import time
from typing import Any

from drflow.engines.postgres.fence import check_fence, unfence
from drflow.engines.postgres.lsn import parse_lsn
from drflow.engines.postgres.node import Node, NodeLike, as_node, connect, node_health, probe_write
from drflow.engines.postgres.refusal import (
    LagExceeded,
    LagUnknown,
    NotInRecovery,
    PromotionFailed,
    ReplayPaused,
    ReplicaUnreachable,
)
from drflow.units import human_duration

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
                    f"{replica.describe()} did not finish promotion within {human_duration(timeout)}; read its "
                    "server log "
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
                refused = "still in recovery" if row and row[0] else probe_write(db)
        except psycopg.Error as exc:
            refused = str(exc).strip()
        if refused is None:
            return time.monotonic()
        last = refused
        if time.monotonic() > deadline:
            raise PromotionFailed(
                f"{replica.describe()} was promoted but is not writable after {human_duration(timeout)} ({last}); "
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
