"""Check-only twins of the failover steps (gate_lag, fence, promote, rebuild_replica, validate_sql, assess).

Each answers "would this step succeed now?" without changing anything: every question is one read-only
statement with a statement timeout, in a read-only transaction, on a connection that gives up after a few
seconds. Each returns ``{"ok": bool, "detail": str, ...facts}``; an unreachable node is a finding, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.lsn import parse_lsn
from drflow.hosts import Host, HostError

CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_S = 10.0
APPLICATION_NAME = "drflow-walkthrough"

_ROLE_SQL = """
select pg_is_in_recovery(),
       current_setting('default_transaction_read_only'),
       case when pg_is_in_recovery() then null else pg_current_wal_lsn()::text end,
       pg_last_wal_replay_lsn()::text,
       extract(epoch from now() - pg_last_xact_replay_timestamp())::float8,
       case when pg_is_in_recovery() then pg_get_wal_replay_pause_state() end,
       (select rolsuper from pg_roles where rolname = current_user),
       (select rolreplication from pg_roles where rolname = current_user),
       current_setting('server_version_num')::int,
       has_function_privilege('pg_promote(boolean, integer)', 'execute')
"""
_KEYS = (
    "in_recovery",
    "default_read_only",
    "current_lsn",
    "replay_lsn",
    "replay_age_s",
    "replay_pause_state",
    "superuser",
    "replication",
    "version_num",
    "may_promote",
)


def read_row(conn: PgConnInfo, query: str, args: Sequence[Any] = (), *, timeout_s: float = STATEMENT_TIMEOUT_S) -> Any:
    """One read-only statement with a statement timeout; its first row (psycopg.Error when it cannot)."""
    import psycopg

    kwargs = {
        **conn.libpq_kwargs(connect_timeout=CONNECT_TIMEOUT_S),
        "application_name": APPLICATION_NAME,
        "options": f"-c statement_timeout={int(timeout_s * 1000)}",
    }
    with psycopg.connect(**kwargs, autocommit=False) as db:
        db.read_only = True
        with db.transaction(force_rollback=True):
            return db.execute(query, tuple(args)).fetchone()


def node_facts(name: str, conn: PgConnInfo) -> dict[str, Any]:
    """Reachable, role, read-only, LSNs, replay age and the role's rights, from one statement."""
    import psycopg

    facts: dict[str, Any] = {"node": name, "server": conn.describe(), "reachable": False}
    try:
        row = read_row(conn, _ROLE_SQL)
    except psycopg.Error as exc:
        facts["error"] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return facts
    facts.update(reachable=True, **dict(zip(_KEYS, row, strict=True)))
    facts["in_recovery"] = bool(facts["in_recovery"])
    facts["default_read_only"] = facts["default_read_only"] == "on"
    return facts


def _unreachable(facts: dict[str, Any], what: str) -> dict[str, Any]:
    return {
        "ok": False,
        "detail": f"{facts['node']} ({facts['server']}) is unreachable: {facts.get('error')}; {what}",
        "nodes": [facts],
    }


def node_ready(name: str, conn: PgConnInfo, role: str | None = None) -> dict[str, Any]:
    """The node answers (and is the primary or a standby, when ``role`` says which it should be)."""
    facts = node_facts(name, conn)
    if not facts["reachable"]:
        return _unreachable(facts, "start it or fix the network or its Airflow connection")
    actual = "replica" if facts["in_recovery"] else "primary"
    if role is not None and role != actual:
        return {
            "ok": False,
            "detail": f"{name} is reachable but is a {actual}, where the spec says {role}: the plan would act on "
            "the wrong node; find out which node is the primary now and fix the spec or the servers",
            "nodes": [facts],
        }
    return {"ok": True, "detail": f"{name} reachable ({actual})", "nodes": [facts]}


def lag_ready(
    primary: tuple[str, PgConnInfo] | None, replica: tuple[str, PgConnInfo], max_lag_s: float
) -> dict[str, Any]:
    """The lag gate's preconditions: the replica reachable, in recovery, replaying, its lag known and small."""
    facts = node_facts(*replica)
    if not facts["reachable"]:
        return _unreachable(facts, "the lag gate would refuse: start it or fix its connection")
    name = replica[0]
    if not facts["in_recovery"]:
        return {"ok": False, "detail": f"{name} is not in recovery: there is no standby to fail over to", **_n(facts)}
    if facts["replay_pause_state"] in ("paused", "pause requested"):
        return {"ok": False, "detail": f"WAL replay is paused on {name}: run pg_wal_replay_resume()", **_n(facts)}
    lag_s, how, reference = _lag(primary, facts)
    nodes = [facts, *([reference] if reference else [])]
    if lag_s is None:
        return {
            "ok": False,
            "detail": f"the lag of {name} is unknown ({how}) and it has replayed no commit: the gate would refuse",
            "nodes": nodes,
        }
    if lag_s > max_lag_s:
        return {
            "ok": False,
            "detail": f"{name} is {lag_s:.1f}s behind ({how}), more than the allowed {max_lag_s:.0f}s",
            "lag_s": lag_s,
            "nodes": nodes,
        }
    return {"ok": True, "detail": f"{name} in recovery, {lag_s:.1f}s behind ({how})", "lag_s": lag_s, "nodes": nodes}


def _n(facts: dict[str, Any]) -> dict[str, Any]:
    return {"nodes": [facts]}


def _lag(primary: tuple[str, PgConnInfo] | None, replica: dict[str, Any]) -> tuple[float | None, str, Any]:
    reference = node_facts(*primary) if primary is not None else None
    if reference is not None and reference["reachable"] and not reference["in_recovery"]:
        behind = parse_lsn(reference["current_lsn"]) - parse_lsn(replica["replay_lsn"] or "0/0")
        if behind <= 0:
            return 0.0, "replayed up to the primary's LSN", reference
        age = replica["replay_age_s"]
        return (
            (None if age is None else float(age)),
            f"{behind} bytes behind: age of its last replayed commit",
            reference,
        )
    why = "primary unreachable" if reference is not None else "no primary known"
    age = replica["replay_age_s"]
    return (None if age is None else float(age)), f"{why}: age of its last replayed commit, an upper bound", reference


def fence_ready(
    name: str, conn: PgConnInfo, method: str, *, data_dir: str | None, host: Host, bin_dir: Path
) -> dict[str, Any]:
    """read-only: reachable as a role that may ALTER SYSTEM and end sessions; stop: its host can run pg_ctl."""
    if method == "stop":
        if not data_dir:
            return {"ok": False, "detail": f"fencing {name} by stop needs its data_directory in the spec"}
        try:
            status = host.run(
                [str(bin_dir / "pg_ctl"), "status", "-D", data_dir], as_db_user=True, check=False, timeout=30
            )
        except HostError as exc:
            return {"ok": False, "detail": f"the host of {name} cannot run pg_ctl: {exc}"}
        running = {0: "runs", 3: "is already stopped"}.get(status.returncode)
        if running is None:
            return {"ok": False, "detail": f"pg_ctl status -D {data_dir} cannot tell (exit {status.returncode})"}
        return {"ok": True, "detail": f"pg_ctl on its host sees {data_dir}; the server {running}"}
    facts = node_facts(name, conn)
    if not facts["reachable"]:
        return _unreachable(
            facts, "a read-only fence needs it reachable (or proven down on its host: fence it with method stop)"
        )
    if facts["superuser"]:
        return {"ok": True, "detail": f"{name} reachable as a superuser (ALTER SYSTEM, end sessions)", **_n(facts)}
    if (
        facts["version_num"] >= 150000
        and read_row(conn, "select has_parameter_privilege('default_transaction_read_only', 'ALTER SYSTEM')")[0]
    ):
        return {"ok": True, "detail": f"{name} reachable; the role may ALTER SYSTEM the read-only setting", **_n(facts)}
    return {
        "ok": False,
        "detail": f"the role of {name}'s connection ({conn.user}) may not ALTER SYSTEM default_transaction_read_only: "
        "connect as a superuser, or GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only (PostgreSQL 15+)",
        **_n(facts),
    }


def promote_ready(
    standby: tuple[str, PgConnInfo],
    fence: tuple[str, PgConnInfo] | None,
    *,
    fenced_before: bool,
    max_lag_s: float,
    primary: tuple[str, PgConnInfo] | None,
) -> dict[str, Any]:
    """The standby would pass the lag gate and may be promoted; the fence node is or will be fenced."""
    ready = lag_ready(primary, standby, max_lag_s)
    if not ready["ok"]:
        return ready
    facts = ready["nodes"][0]
    if not facts["may_promote"]:
        return {"ok": False, "detail": f"{standby[0]}'s role may not run pg_promote(): GRANT EXECUTE on it", **ready}
    if fence is None:
        return {**ready, "detail": f"{ready['detail']}; no fence node"}
    if fenced_before:
        return {**ready, "detail": f"{ready['detail']}; {fence[0]} is fenced by an earlier step"}
    guard = node_facts(*fence)
    if guard["reachable"] and (guard["in_recovery"] or guard["default_read_only"]):
        return {**ready, "detail": f"{ready['detail']}; {fence[0]} already refuses writes"}
    what = "takes writes" if guard["reachable"] else f"is unreachable ({guard.get('error')}), so may take writes"
    return {
        "ok": False,
        "detail": f"{fence[0]} {what} and no step before this one fences it: the split-brain guard would refuse "
        "the promotion; add a fence step before it",
        "nodes": [*ready["nodes"], guard],
    }


def rebuild_ready(
    name: str, data_dir: str | None, source: tuple[str, PgConnInfo] | None, bin_dir: Path
) -> dict[str, Any]:
    """The node's data directory is known, pg_rewind exists, the source takes its replication role."""
    if not data_dir:
        return {"ok": False, "detail": f"rebuilding {name} needs its data_directory in the spec"}
    if not (bin_dir / "pg_rewind").exists():
        return {"ok": False, "detail": f"pg_rewind is missing from {bin_dir}: install the PostgreSQL server package"}
    if source is None:
        return {"ok": False, "detail": "the source node has no replication_conn_id (a role WITH REPLICATION)"}
    facts = node_facts(*source)
    if not facts["reachable"]:
        return _unreachable(facts, "the rebuild streams from it over its replication connection")
    if facts["superuser"] or not facts["replication"]:
        why = "is a superuser" if facts["superuser"] else "lacks REPLICATION"
        return {"ok": False, "detail": f"the replication role of {source[0]} {why}: use a LOGIN REPLICATION role"}
    return {"ok": True, "detail": f"{name}'s data directory known; {source[0]} reachable as a replication role"}
