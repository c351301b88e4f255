"""Make a node a streaming replica of another: ``pg_rewind``, or a fresh clone when rewind cannot.

This is failback's first half: after a failover the old primary has diverged from the promoted
replica (or is gone); rebuilding it as a replica of the new primary, and waiting until it has
caught up, is what makes a switchover back possible.

Both ``pg_rewind`` and ``pg_basebackup`` copy the source's configuration files, so the node's own
``postgresql.conf``, ``postgresql.auto.conf``, ``pg_hba.conf`` and ``pg_ident.conf`` are put back
afterwards (its port, sockets and settings stay its own), without a read-only fence drflow left in
it, plus ``primary_conninfo``, ``primary_slot_name`` and ``standby.signal``. Like
:mod:`~drflow.engines.postgres.cluster`, these files are read and written locally: the data
directory must be on the worker. The server log of a node drflow starts goes to
``<data_dir>/log/drflow-pg_ctl.log``.

The standby streams as the spec's replication role (``replication``: the source node's
``replication_conn_id``), never as drflow's own admin connection: ``primary_conninfo`` and the fresh
clone's ``pg_basebackup`` use it, and it is refused when it is the admin user, a superuser, a role
without REPLICATION, or another server than the source. ``pg_rewind`` and the slot still use the
admin connection (they need more than replication rights), only for the rebuild itself.

A fresh clone moves the old data directory aside (``<name>.drflow-old-<UTC time>``, kept for
inspection: remove it once nothing in it is needed) and clones into an empty one.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo

from drflow.engines.postgres.cluster import write_settings
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.lsn import format_lsn, parse_lsn
from drflow.engines.postgres.node import Node, connect, node_health, server_running, write_state
from drflow.engines.postgres.refusal import Refused
from drflow.hosts import HostError, tail
from drflow.spec.slots import node_slot_name
from drflow.units import human_duration

CONFIG_FILES = ("postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf")
FENCE_SETTINGS = frozenset({"default_transaction_read_only"})
SERVER_LOG = Path("log") / "drflow-pg_ctl.log"
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?")


class RebuildError(RuntimeError):
    """A node could not be rebuilt as a replica; the message says what was done and what to do."""


def slot_name_for(node_name: str) -> str:
    """A physical replication slot name for ``node_name`` (``[a-z0-9_]``, at most 63 characters)."""
    return node_slot_name(node_name)


def rebuild_replica(
    node: Node,
    source: PgConnInfo,
    *,
    replication: PgConnInfo,
    slot: str | None,
    catch_up: bool = True,
    timeout: float = 300.0,
    sync: bool = True,
) -> dict[str, Any]:
    """Rebuild ``node`` as a streaming replica of ``source`` and return what was done and how long it took.

    Idempotent: a node that already streams from ``source`` is left alone (path
    ``already-streaming``). A node that still accepts writes is refused (fence it first: its
    writes since the failover would be discarded). Otherwise the node is stopped, rewound with
    ``pg_rewind`` (path ``rewind``) or, when that fails, cloned afresh (path ``fresh-clone``, with
    ``rewind_error``), configured as a standby of ``source`` through ``slot`` (created on the source
    if missing), started, and waited for until it streams and, with ``catch_up``, has replayed
    the source's WAL up to where it was when the wait began. ``sync=False`` skips flushing the copied
    files to disk (``--no-sync``): only for throw-away clusters (the sandbox, tests), never for a database.
    """
    started = time.monotonic()
    data_dir = _require_data_dir(node)
    _require_primary(source)
    if (node.conn.host, node.conn.port) == (source.host, source.port):
        raise RebuildError(f"{node.describe()} cannot follow itself: the source is the same server; name another")
    check_replication_role(source, replication)
    result: dict[str, Any] = {
        "node": node.name,
        "source": source.describe(),
        "slot": slot,
        "replication_user": replication.user,
    }
    current = node_health(node)
    if current["reachable"] and _streams_from(current, source) and receiver_user(node) == replication.user:
        result["path"] = "already-streaming"
    else:
        if current["reachable"]:
            _check_rebuildable(node, data_dir)
        if slot:
            result["slot_created"] = ensure_slot(source, slot, node.name)
        result["stop"] = stop_server(node)
        saved = save_config(data_dir)
        rebuilt_at = time.monotonic()
        if not saved:
            result.update(path="fresh-clone", rewind_error=f"no data directory in {data_dir} to rewind")
            result["moved_aside"] = fresh_clone(node, replication, slot, timeout, sync=sync)
        else:
            try:
                result["rewind_output"] = rewind(node, source, timeout, sync=sync)
                result["path"] = "rewind"
            except HostError as exc:
                result.update(path="fresh-clone", rewind_error=tail(exc.stderr or str(exc), 8))
                result["moved_aside"] = fresh_clone(node, replication, slot, timeout, sync=sync)
        result["copy_s"] = round(time.monotonic() - rebuilt_at, 3)
        result["config"] = configure_standby(node, replication, slot, saved)
        start_server(node, timeout)
    result["streaming_s"] = round(wait_streaming(node, source, timeout) - started, 3)
    if catch_up:
        result["caught_up"] = wait_caught_up(source, node, timeout)
    result["inactive_slots"] = inactive_slots(node.conn)
    result["total_s"] = round(time.monotonic() - started, 3)
    return result


def check_replication_role(source: PgConnInfo, replication: PgConnInfo) -> dict[str, Any]:
    """Refuse a replication connection that is not a plain replication role on the source server."""
    fix = (
        "name a connection to the source as a role WITH LOGIN REPLICATION (and nothing more) in the source "
        "node's replication_conn_id (CREATE ROLE replicator WITH LOGIN REPLICATION PASSWORD '...')"
    )
    if (replication.host, replication.port) != (source.host, source.port):
        raise RebuildError(
            f"the replication connection points at {replication.host}:{replication.port}, but the source is "
            f"{source.host}:{source.port}; nothing was changed. Point it at the source node: {fix}"
        )
    if replication.user == source.user:
        raise RebuildError(
            f"the replication connection logs in as {replication.user}, drflow's own admin user for "
            f"{source.describe()}; a standby must not hold those credentials. Nothing was changed; {fix}"
        )
    with connect(source) as db:
        row = db.execute(
            "select rolreplication, rolsuper, rolcanlogin from pg_roles where rolname = %s", (replication.user,)
        ).fetchone()
    if row is None:
        raise RebuildError(f"role {replication.user} does not exist on {source.describe()}; nothing was changed. {fix}")
    can_replicate, is_super, can_login = (bool(v) for v in row)
    if is_super or not can_replicate or not can_login:
        what = "is a superuser" if is_super else "cannot log in" if not can_login else "lacks REPLICATION"
        raise RebuildError(f"role {replication.user} on {source.describe()} {what}; nothing was changed. {fix}")
    return {"user": replication.user}


def receiver_user(node: Node) -> str | None:
    """The user the node's WAL receiver connects as (from ``pg_stat_wal_receiver.conninfo``)."""
    from psycopg.conninfo import conninfo_to_dict

    with connect(node.conn) as db:
        row = db.execute("select conninfo from pg_stat_wal_receiver").fetchone()
    if not row or not row[0]:
        return None
    user = conninfo_to_dict(str(row[0])).get("user")
    return str(user) if user else None


def _require_data_dir(node: Node) -> Path:
    if node.data_dir is None:
        raise RebuildError(
            f"rebuilding {node.describe()} needs its data directory on its host, and none is known; "
            "set data_directory of this node in the spec"
        )
    return node.data_dir


def _require_primary(source: PgConnInfo) -> None:
    health = node_health(source)
    if not health["reachable"]:
        raise RebuildError(
            f"the source {source.describe()} is unreachable ({health['error']}); nothing was changed. "
            "A node can only be rebuilt from a running primary: start it or fix its connection, then retry"
        )
    if health["in_recovery"]:
        raise RebuildError(
            f"the source {source.describe()} is in recovery (a standby); nothing was changed. "
            "Rebuild from the current primary (the node that was promoted)"
        )


def _streams_from(health: dict[str, Any], source: PgConnInfo) -> bool:
    return bool(
        health["in_recovery"]
        and health["wal_receiver"] == "streaming"
        and health["upstream"] == f"{source.host}:{source.port}"
    )


def _check_rebuildable(node: Node, data_dir: Path) -> None:
    with connect(node.conn) as db:
        row = db.execute("select current_setting('data_directory')").fetchone()
    if row is not None and Path(str(row[0])).resolve() != data_dir.resolve():
        raise RebuildError(
            f"{node.describe()} runs from {row[0]}, not from {data_dir} as the spec says; nothing was changed. "
            "Correct data_directory of this node in the spec"
        )
    state = write_state(node)
    if state["state"] == "writable":
        raise Refused(
            f"{node.describe()} still accepts writes: rebuilding it now discards every write it took since "
            "the failover, and clients may still be writing to it",
            f"fence {node.name} first (fence step, method read-only or stop), then retry",
            {"node": state},
        )


def ensure_slot(source: PgConnInfo, slot: str, node_name: str) -> bool:
    """Create physical slot ``slot`` on ``source`` (reserving WAL now) unless it exists; True if created.

    A slot whose WAL is lost is dropped and created again; one in use by another standby is refused.
    """
    with connect(source) as db:
        row = db.execute(
            "select active, to_jsonb(s) ->> 'wal_status',"
            " (select application_name from pg_stat_replication r where r.pid = s.active_pid)"
            " from pg_replication_slots s where slot_name = %s",
            (slot,),
        ).fetchone()
        if row is not None:
            active, wal_status, user = row
            if active and user != node_name:
                raise RebuildError(
                    f"replication slot {slot!r} on {source.describe()} is in use by another standby ({user}); "
                    "nothing was changed. Give this node its own slot (`slot:` of the node in the spec)"
                )
            if wal_status != "lost":
                return False
            db.execute("select pg_drop_replication_slot(%s)", (slot,))
        db.execute("select pg_create_physical_replication_slot(%s, true)", (slot,))
    return True


def inactive_slots(conn: PgConnInfo) -> list[str]:
    """Replication slots nobody streams from on ``conn``: each holds back WAL (on a standby too)
    until a standby uses it again or it is dropped."""
    with connect(conn) as db:
        rows = db.execute("select slot_name from pg_replication_slots where not active order by 1").fetchall()
    return [str(row[0]) for row in rows]


def stop_server(node: Node, timeout: float = 60.0) -> str:
    """Stop the node's server (fast, else immediate); the mode used, or ``not running``."""
    data_dir = _require_data_dir(node)
    if not server_running(node):
        return "not running"
    pg_ctl = str(node.bin_dir / "pg_ctl")
    try:
        node.host.run(
            [pg_ctl, "stop", "-D", str(data_dir), "-m", "fast", "-w", "-t", str(int(timeout))],
            as_db_user=True,
            timeout=timeout + 15,
        )
        return "fast"
    except HostError:
        node.host.run(
            [pg_ctl, "stop", "-D", str(data_dir), "-m", "immediate", "-w", "-t", "30"], as_db_user=True, timeout=45
        )
        return "immediate"


def save_config(data_dir: Path) -> dict[str, str]:
    """The node's own configuration files (name → text); empty when there is no cluster in ``data_dir``."""
    if not (data_dir / "PG_VERSION").is_file():
        return {}
    return {name: (data_dir / name).read_text() for name in CONFIG_FILES if (data_dir / name).is_file()}


def rewind(node: Node, source: PgConnInfo, timeout: float, *, sync: bool = True) -> str:
    """``pg_rewind`` the stopped node onto ``source``'s timeline; its output. Raises HostError on failure."""
    data_dir = _require_data_dir(node)
    checkpoint_if_promoted(source)
    argv = [
        str(node.bin_dir / "pg_rewind"),
        f"--target-pgdata={data_dir}",
        f"--source-server={source.dsn()}",
        *([] if sync else ["--no-sync"]),
    ]
    result = node.host.run(argv, as_db_user=True, env=source.env(), timeout=timeout)
    return tail(result.stdout + result.stderr, 8)


def checkpoint_if_promoted(source: PgConnInfo) -> bool:
    """CHECKPOINT a freshly promoted source whose control file still names the old timeline.

    pg_rewind reads the source's timeline from its control file, which a promotion updates only at
    the next checkpoint; before that it sees both on one timeline and says "no rewind required".
    """
    with connect(source) as db:
        row = db.execute(
            "select (select timeline_id from pg_control_checkpoint()),"
            " ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"
        ).fetchone()
        if row is None or row[0] == row[1]:
            return False
        db.execute("CHECKPOINT")
    return True


def fresh_clone(node: Node, source: PgConnInfo, slot: str | None, timeout: float, *, sync: bool = True) -> str | None:
    """Move the node's data directory aside and clone ``source`` into a new one with ``pg_basebackup``.

    ``source`` is the replication connection: pg_basebackup needs nothing more.

    Returns where the old directory went (None if there was none). If the clone fails, the old
    directory is moved back, so a retry starts from the same state.
    """
    data_dir = _require_data_dir(node)
    host = node.host
    aside: Path | None = None
    if host.run(["test", "-e", str(data_dir)], check=False).returncode == 0:
        aside = data_dir.with_name(f"{data_dir.name}.drflow-old-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}")
        host.run(["mv", str(data_dir), str(aside)])
    host.make_private_dir(data_dir)
    argv = [
        str(node.bin_dir / "pg_basebackup"),
        "-D",
        str(data_dir),
        "-X",
        "stream",
        "--checkpoint=fast",
        "--no-password",
        *([] if sync else ["--no-sync"]),
        "-d",
        source.dsn(),
    ]
    if slot:
        argv += ["-S", slot]
    try:
        host.run(argv, as_db_user=True, env=source.env(), timeout=timeout)
    except HostError as exc:
        host.run(["rm", "-rf", str(data_dir)], check=False)
        back = ""
        if aside is not None:
            host.run(["mv", str(aside), str(data_dir)], check=False)
            back = f"; the old data directory was moved back to {data_dir}"
        raise RebuildError(
            f"pg_rewind could not be used and cloning {source.describe()} into {data_dir} failed too: {exc}{back}. "
            "Check that the source allows replication connections from this host (pg_hba.conf), has a free "
            "WAL sender, and that the disk has room, then retry"
        ) from exc
    return str(aside) if aside else None


def configure_standby(node: Node, source: PgConnInfo, slot: str | None, saved: dict[str, str]) -> dict[str, Any]:
    """Put the node's own configuration back, drop a read-only fence, point it at ``source``.

    ``source`` is the replication connection: the standby holds its credentials, not drflow's.
    """
    data_dir = _require_data_dir(node)
    for name, text in saved.items():
        _write_owned(node, data_dir / name, text)
    auto = data_dir / "postgresql.auto.conf"
    removed = _remove_settings(auto, FENCE_SETTINGS)
    password = {"password": source.password} if source.password else {}
    settings: dict[str, str | int] = {
        # libpq parameters of the spec's replication connection: the standby streams as that role.
        "primary_conninfo": make_conninfo(source.dsn(), application_name=node.name, **password),
        "primary_slot_name": slot or "",
    }
    if not saved:
        # The clone brought the source's configuration: at least listen on the node's own port.
        settings["port"] = node.conn.port
    write_settings(auto, settings)
    node.host.chown_to_db_user(auto)
    (data_dir / "recovery.signal").unlink(missing_ok=True)
    _write_owned(node, data_dir / "standby.signal", "")
    node.host.make_private_dir(data_dir / SERVER_LOG.parent)
    return {"restored_files": sorted(saved), "removed_settings": removed, "port_from_spec": not saved}


def _write_owned(node: Node, path: Path, text: str) -> None:
    existed = path.exists()
    with path.open("w") as fh:  # truncating in place keeps the db user as owner
        fh.write(text)
    if not existed:
        node.host.chown_to_db_user(path)
        path.chmod(0o600)


def _remove_settings(conf: Path, names: frozenset[str]) -> list[str]:
    if not conf.exists():
        return []
    lines = conf.read_text().splitlines()
    kept, removed = [], []
    for line in lines:
        match = _ASSIGNMENT.match(line)
        if match and not line.lstrip().startswith("#") and match.group(1).lower() in names:
            removed.append(line.strip())
        else:
            kept.append(line)
    if removed:
        with conf.open("w") as fh:
            fh.write("\n".join(kept) + "\n")
    return removed


def start_server(node: Node, timeout: float) -> None:
    data_dir = _require_data_dir(node)
    log = data_dir / SERVER_LOG
    argv = [str(node.bin_dir / "pg_ctl"), "start", "-D", str(data_dir), "-l", str(log), "-w", "-t", str(int(timeout))]
    try:
        node.host.run(argv, as_db_user=True, timeout=timeout + 15)
    except HostError as exc:
        raise RebuildError(
            f"the rebuilt {node.describe()} did not start: {exc}\nserver log {log}:\n{_log_tail(log)}\n"
            "fix what the log names (a port in use, a setting the source's configuration brought) and retry"
        ) from exc


def wait_streaming(node: Node, source: PgConnInfo, timeout: float) -> float:
    """Wait until the node's WAL receiver streams on the source's timeline; the monotonic time it did."""
    import psycopg

    timeline = node_health(source).get("timeline")
    deadline = time.monotonic() + timeout
    seen = "no answer"
    while True:
        try:
            with connect(node.conn) as db:
                row = db.execute(
                    "select pg_is_in_recovery(), status, received_tli from pg_stat_wal_receiver"
                    " right join (select 1) one on true"
                ).fetchone()
            if row:
                seen = f"in recovery: {row[0]}, WAL receiver: {row[1] or 'not running'} on timeline {row[2]}"
                if row[0] and row[1] == "streaming" and row[2] == timeline:
                    return time.monotonic()
        except psycopg.Error as exc:
            seen = str(exc).strip()
        if time.monotonic() > deadline:
            log = _require_data_dir(node) / SERVER_LOG
            raise RebuildError(
                f"{node.describe()} is not streaming from {source.describe()} on its timeline {timeline} after "
                f"{human_duration(timeout)} ({seen}).\nserver log {log}:\n{_log_tail(log)}\n"
                'look for a missing slot, an authentication or pg_hba.conf error, or "forked off" (the node '
                "holds WAL the source never had: rebuild it again, or move its data directory away to force a "
                "fresh clone)"
            )
        time.sleep(0.1)


def wait_caught_up(source: PgConnInfo, node: Node, timeout: float) -> dict[str, Any]:
    """Wait until ``node`` has replayed ``source``'s WAL up to the LSN the source had when called."""
    started = time.monotonic()
    with connect(source) as db:
        row = db.execute("select pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = parse_lsn(row[0])
    replayed = 0
    with connect(node.conn) as db:
        while True:
            row = db.execute("select pg_last_wal_replay_lsn()::text").fetchone()
            replayed = parse_lsn(row[0]) if row and row[0] else 0
            if replayed >= target:
                return {
                    "lsn": format_lsn(replayed),
                    "target_lsn": format_lsn(target),
                    "seconds": round(time.monotonic() - started, 3),
                }
            if time.monotonic() - started > timeout:
                raise RebuildError(
                    f"{node.describe()} streams from {source.describe()} but is still {target - replayed} bytes "
                    f"of WAL behind after {human_duration(timeout)}; check replay on it (long queries, a slow disk) "
                    "and retry"
                )
            time.sleep(0.05)


def _log_tail(log: Path) -> str:
    try:
        return tail(log.read_text(errors="replace"), 20)
    except OSError:
        return "(no server log)"
