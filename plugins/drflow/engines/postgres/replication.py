"""Replication health of a primary and its streaming replicas, measured in one pass.

What is measured, per replica:

- ``lag_bytes``: ``pg_current_wal_lsn()`` on the primary minus ``pg_last_wal_replay_lsn()`` on the
  replica (the primary's LSN is read right before each replica), never below 0.
- ``lag_seconds``, the age of the replica's data:

  * replay LSN at or past the primary's current LSN → **0**, whatever
    ``pg_last_xact_replay_timestamp()`` says. An idle primary commits nothing, so the last replayed
    commit grows old while the replica holds every byte: the naive ``now() - replay timestamp``
    would report that idleness as lag.
  * behind, but catching up with that LSN within ``settle_s`` (a streaming replica applying the
    last few records, or a primary that wrote only a checkpoint or standby snapshot record) → the
    time it took, at most ``settle_s``.
  * behind and not catching up → the larger of ``now() - pg_last_xact_replay_timestamp()`` on the
    replica and ``pg_stat_replication.replay_lag`` on the primary. The timestamp grows while replay
    is stuck (``replay_lag`` does not: it is only updated when the replica reports progress); the
    commit time comes from the primary's clock, so clocks must be in sync (NTP).
  * behind with neither a replayed commit since the replica started nor a ``replay_lag``, or the
    primary unreachable (nothing to compare with; ``last_replay_at`` still tells the data's age) →
    unknown (``None``), no lag alert.

Thresholds: ``lag_seconds > max_lag_s`` is ``lag_exceeded`` (critical), else ``> warn_lag_s`` is
``lag_warning``. Every other fault has its own alert code (:data:`ALERT_CODES`); critical alerts make
the report unhealthy. The monitoring role needs ``pg_monitor`` (for ``pg_stat_replication``) and,
unless it is a superuser, EXECUTE on ``pg_get_wal_replay_pause_state()`` on the replicas.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.lsn import format_lsn, parse_lsn
from drflow.engines.postgres.replication_report import (
    ALERT_CODES,
    Alert,
    PrimaryStatus,
    ReplicaStatus,
    ReplicaTarget,
    ReplicationReport,
    SlotStatus,
)
from drflow.units import human_duration, human_size

if TYPE_CHECKING:
    import psycopg

APPLICATION_NAME = "drflow-replication-watch"


def measure_replication(
    primary: PgConnInfo,
    replicas: Sequence[ReplicaTarget],
    *,
    warn_lag_s: float,
    max_lag_s: float,
    max_slot_retained_bytes: int,
    connect_timeout: int = 5,
    settle_s: float = 1.0,
) -> ReplicationReport:
    """Check the primary and every replica once; never raises for a server that is down or wrong."""
    report = ReplicationReport(
        checked_at=datetime.now(UTC).isoformat(),
        thresholds={
            "warn_lag_s": warn_lag_s,
            "max_lag_s": max_lag_s,
            "max_slot_retained_bytes": max_slot_retained_bytes,
        },
        primary=PrimaryStatus(server=primary.describe()),
    )
    limits = _Limits(warn_lag_s, max_lag_s, max_slot_retained_bytes, settle_s)
    primary_conn = _open_primary(primary, report, connect_timeout)
    try:
        for replica in replicas:
            _measure_replica(replica, primary_conn, report, limits, connect_timeout)
    finally:
        if primary_conn is not None:
            primary_conn.close()
    return report


@dataclass(frozen=True)
class _Limits:
    warn_lag_s: float
    max_lag_s: float
    max_slot_retained_bytes: int
    settle_s: float


def _connect(conn: PgConnInfo, connect_timeout: int) -> psycopg.Connection[Any]:
    import psycopg

    kwargs = {
        "application_name": APPLICATION_NAME,
        **conn.libpq_kwargs(connect_timeout=connect_timeout),
        # A hung server must not hang the watch: every query gets the connect timeout too.
        "options": f"-c statement_timeout={connect_timeout * 1000}",
    }
    return psycopg.connect(**kwargs, autocommit=True)


def _alert(report: ReplicationReport, code: str, replica: str | None, message: str) -> None:
    report.alerts.append(Alert(code=code, severity=ALERT_CODES[code], replica=replica, message=message))


def _open_primary(
    primary: PgConnInfo, report: ReplicationReport, connect_timeout: int
) -> psycopg.Connection[Any] | None:
    import psycopg

    status = report.primary
    conn: psycopg.Connection[Any] | None = None
    try:
        conn = _connect(primary, connect_timeout)
        row = conn.execute("select pg_is_in_recovery(), current_setting('server_version')").fetchone()
    except psycopg.Error as exc:
        if conn is not None:
            conn.close()
        status.error = str(exc).strip()
        _alert(
            report,
            "primary_unreachable",
            None,
            f"cannot reach the primary {status.server}: {status.error}. Replication lag cannot be measured "
            "while it is down: check that the primary is up and that its Airflow connection points at it; "
            "if it is lost, follow the component's failover runbook",
        )
        return None
    assert row is not None
    status.reachable = True
    status.in_recovery, status.server_version = bool(row[0]), str(row[1])
    if status.in_recovery:
        _alert(
            report,
            "primary_in_recovery",
            None,
            f"the primary connection points at {status.server}, which is a standby (in recovery): after a "
            "failover, point datastore.primary.conn_id (or that Airflow connection) at the new primary",
        )
        conn.close()
        return None
    return conn


def _primary_facts(
    conn: psycopg.Connection[Any], slot: str | None
) -> tuple[int, list[dict[str, Any]], SlotStatus | None]:
    """The primary's current LSN, its pg_stat_replication rows and the replica's slot."""
    lsn_row = conn.execute("select pg_current_wal_lsn()::text").fetchone()
    assert lsn_row is not None
    cursor = conn.execute(
        "select pid, application_name, state, sync_state, replay_lsn::text as replay_lsn,"
        " extract(epoch from replay_lag)::float8 as replay_lag_s from pg_stat_replication"
    )
    names = [column.name for column in cursor.description or ()]
    senders = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    slot_status = None
    if slot is not None:
        slot_row = conn.execute(
            "select active, active_pid, restart_lsn::text,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, to_jsonb(s) ->> 'wal_status'"
            " from pg_replication_slots s where slot_name = %s",
            (slot,),
        ).fetchone()
        if slot_row is None:
            slot_status = SlotStatus(name=slot, exists=False)
        else:
            slot_status = SlotStatus(
                name=slot,
                exists=True,
                active=bool(slot_row[0]),
                active_pid=slot_row[1],
                restart_lsn=slot_row[2],
                retained_bytes=max(0, int(slot_row[3] or 0)),
                wal_status=slot_row[4],
            )
    return parse_lsn(lsn_row[0]), senders, slot_status


def _measure_replica(
    target: ReplicaTarget,
    primary_conn: psycopg.Connection[Any] | None,
    report: ReplicationReport,
    limits: _Limits,
    connect_timeout: int,
) -> None:
    import psycopg

    status = ReplicaStatus(name=target.name, server=target.conn.describe(), state="unreachable")
    report.replicas.append(status)
    primary_lsn: int | None = None
    senders: list[dict[str, Any]] = []
    if primary_conn is not None and report.primary.error is None:
        try:
            primary_lsn, senders, status.slot = _primary_facts(primary_conn, target.slot)
        except psycopg.Error as exc:
            report.primary.reachable, report.primary.error = False, str(exc).strip()
            _alert(
                report,
                "primary_unreachable",
                None,
                f"the primary {report.primary.server} stopped answering during the check: {report.primary.error}. "
                "Check that it is up; if it is lost, follow the component's failover runbook",
            )
        else:
            status.primary_lsn = format_lsn(primary_lsn)
            _check_slot(target, status, report, limits)
    try:
        with _connect(target.conn, connect_timeout) as conn:
            status.reachable = True
            _probe_replica(conn, target, status, primary_lsn, senders, report, limits)
    except psycopg.Error as exc:
        status.state, status.error = "unreachable", str(exc).strip()
        status.primary_view = status.primary_view or _sender_row(senders, status, None)
        _alert(
            report,
            "replica_unreachable",
            target.name,
            f"replica {target.name} ({status.server}) is unreachable: {status.error}. It cannot take over "
            "while it is down: start it (or fix the network or its Airflow connection) and read its server "
            "log for why it stopped",
        )


def _probe_replica(
    conn: psycopg.Connection[Any],
    target: ReplicaTarget,
    status: ReplicaStatus,
    primary_lsn: int | None,
    senders: list[dict[str, Any]],
    report: ReplicationReport,
    limits: _Limits,
) -> None:
    facts = _replica_facts(conn)
    status.in_recovery = facts["in_recovery"]
    status.receive_lsn, status.replay_lsn = facts["receive_lsn"], facts["replay_lsn"]
    status.wal_receiver_status = facts["wal_receiver_status"]
    replay_at: datetime | None = facts["last_replay_at"]
    status.last_replay_at = replay_at.isoformat() if replay_at else None
    status.primary_view = _sender_row(senders, status, facts["wal_receiver_conninfo"])
    if not status.in_recovery:
        status.state = "not_in_recovery"
        _alert(
            report,
            "replica_not_in_recovery",
            target.name,
            f"replica {target.name} ({status.server}) is no longer in recovery: it was promoted or started "
            "without standby.signal and accepts writes of its own. If the primary accepts writes too, this "
            "is a split brain: stop writes to one of them now (fence the old primary), then rebuild it as "
            "a replica (pg_rewind or a fresh clone) and update the spec's primary and replicas",
        )
        return
    status.replay_pause_state = _pause_state(conn, facts["version_num"], target, report)
    paused = status.replay_pause_state in ("paused", "pause requested")
    streaming = status.wal_receiver_status == "streaming"
    status.state = "paused" if paused else "streaming" if streaming else "not_streaming"
    if primary_lsn is not None and status.replay_lsn is not None:
        replay_lsn = parse_lsn(status.replay_lsn)
        status.lag_bytes = max(0, primary_lsn - replay_lsn)
        settle_s = limits.settle_s if streaming and not paused else 0.0
        status.lag_seconds = _lag_seconds(conn, primary_lsn, replay_lsn, facts, status.primary_view, settle_s)
    if not streaming:
        _alert(
            report,
            "replica_not_streaming",
            target.name,
            f"replica {target.name} is in recovery but not streaming from the primary (WAL receiver: "
            f"{status.wal_receiver_status or 'not running'}), so it falls further behind with every write. "
            "Read its server log (a missing replication slot, an authentication or pg_hba.conf error, a "
            "primary_conninfo pointing elsewhere) and fix what it names; the receiver retries by itself",
        )
    if paused:
        _alert(
            report,
            "replay_paused",
            target.name,
            f"WAL replay is paused on replica {target.name} (pg_get_wal_replay_pause_state() = "
            f"'{status.replay_pause_state}'): it receives WAL but applies none, so its data gets older"
            f"{_lag_text(status)}. Unless someone paused it on purpose, run SELECT pg_wal_replay_resume(); "
            "on the replica",
        )
    _check_lag(target, status, report, limits)


def _replica_facts(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute(
        "select pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,"
        " pg_last_xact_replay_timestamp(), now(), current_setting('server_version_num')::int,"
        " (select status from pg_stat_wal_receiver), (select conninfo from pg_stat_wal_receiver)"
    ).fetchone()
    assert row is not None
    keys = (
        "in_recovery",
        "receive_lsn",
        "replay_lsn",
        "last_replay_at",
        "now",
        "version_num",
        "wal_receiver_status",
        "wal_receiver_conninfo",
    )
    return dict(zip(keys, row, strict=True))


def _pause_state(
    conn: psycopg.Connection[Any], version_num: int, target: ReplicaTarget, report: ReplicationReport
) -> str | None:
    import psycopg

    query = (
        "select pg_get_wal_replay_pause_state()"
        if version_num >= 140000
        else "select case when pg_is_wal_replay_paused() then 'paused' else 'not paused' end"
    )
    try:
        row = conn.execute(query).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        _alert(
            report,
            "insufficient_privilege",
            target.name,
            f"the monitoring role {target.conn.user!r} may not ask replica {target.name} whether replay is "
            "paused, so a paused replay goes unnoticed: GRANT EXECUTE ON FUNCTION "
            "pg_get_wal_replay_pause_state() TO that role on the primary (it replicates)",
        )
        return None
    return str(row[0]) if row else None


def _lag_seconds(
    conn: psycopg.Connection[Any],
    primary_lsn: int,
    replay_lsn: int,
    facts: Mapping[str, Any],
    primary_view: Mapping[str, Any] | None,
    settle_s: float,
) -> float | None:
    """The age of the replica's data; the rule is in the module docstring."""
    if replay_lsn >= primary_lsn:
        return 0.0
    started = time.monotonic()
    while time.monotonic() - started < settle_s:
        time.sleep(0.05)
        row = conn.execute("select pg_last_wal_replay_lsn()::text").fetchone()
        if row and row[0] and parse_lsn(row[0]) >= primary_lsn:
            return round(time.monotonic() - started, 3)
    candidates: list[float] = []
    if facts["last_replay_at"] is not None:
        candidates.append((facts["now"] - facts["last_replay_at"]).total_seconds() + (time.monotonic() - started))
    if primary_view and primary_view.get("replay_lag_s") is not None:
        candidates.append(float(primary_view["replay_lag_s"]))
    return round(max(0.0, *candidates), 3) if candidates else None


def _sender_row(
    senders: list[dict[str, Any]], status: ReplicaStatus, receiver_conninfo: str | None
) -> dict[str, Any] | None:
    """The replica's walsender on the primary: its slot's active pid, else its application_name."""
    if status.slot is not None and status.slot.active_pid is not None:
        for row in senders:
            if row["pid"] == status.slot.active_pid:
                return row
    names = {status.name}
    if receiver_conninfo:
        from psycopg.conninfo import conninfo_to_dict

        try:
            app = conninfo_to_dict(receiver_conninfo).get("application_name")
        except Exception:  # the server shows the conninfo obfuscated; one that does not parse is only a lost hint
            app = None
        if app:
            names.add(str(app))
    matches = [row for row in senders if row["application_name"] in names]
    return matches[0] if len(matches) == 1 else None


def _check_slot(target: ReplicaTarget, status: ReplicaStatus, report: ReplicationReport, limits: _Limits) -> None:
    slot = status.slot
    if slot is None:
        return
    if not slot.exists:
        _alert(
            report,
            "slot_missing",
            target.name,
            f"replication slot '{slot.name}' of replica {target.name} does not exist on the primary: nothing "
            "keeps the WAL the replica still needs, so after any disconnect it may never catch up. Recreate it "
            f"on the primary with SELECT pg_create_physical_replication_slot('{slot.name}', true); (the replica "
            "reconnects by itself) or fix `slot:` of the replica in the spec",
        )
        return
    retained = slot.retained_bytes or 0
    if not slot.active:
        _alert(
            report,
            "slot_inactive",
            target.name,
            f"replication slot '{slot.name}' on the primary has no replica streaming through it; it holds back "
            f"{human_size(retained)} of WAL and more with every write. Get replica {target.name} streaming "
            f"again with primary_slot_name = '{slot.name}', or drop the slot if the replica is gone for good",
        )
    if retained > limits.max_slot_retained_bytes:
        _alert(
            report,
            "slot_retention_exceeded",
            target.name,
            f"replication slot '{slot.name}' holds back {human_size(retained)} of WAL on the primary, more than "
            f"the limit of {human_size(limits.max_slot_retained_bytes)}: pg_wal grows until the primary's disk "
            f"is full. Get replica {target.name} streaming again, or drop the slot (SELECT "
            f"pg_drop_replication_slot('{slot.name}');) and rebuild the replica later; raise "
            "replication.max_slot_retained in the spec only if the disk has room",
        )


def _check_lag(target: ReplicaTarget, status: ReplicaStatus, report: ReplicationReport, limits: _Limits) -> None:
    lag = status.lag_seconds
    if lag is None:
        return
    if lag > limits.max_lag_s:
        _alert(
            report,
            "lag_exceeded",
            target.name,
            f"replica {target.name} is {human_duration(lag)} behind the primary{_bytes_text(status)}, more than the "
            f"maximum of {human_duration(limits.max_lag_s)} (the RPO): a failover now would lose that much of "
            "the latest commits. Find what slows replay (long queries conflicting on the replica, I/O, the "
            "network) and fix it, or fail over only after it catches up",
        )
    elif lag > limits.warn_lag_s:
        _alert(
            report,
            "lag_warning",
            target.name,
            f"replica {target.name} is {human_duration(lag)} behind the primary{_bytes_text(status)} (warning at "
            f"{human_duration(limits.warn_lag_s)}, failing at {human_duration(limits.max_lag_s)}): watch whether "
            "it catches up, and look for long queries on the replica or a saturated network or disk",
        )


def _bytes_text(status: ReplicaStatus) -> str:
    return f" ({human_size(status.lag_bytes)} of WAL)" if status.lag_bytes else ""


def _lag_text(status: ReplicaStatus) -> str:
    parts = []
    if status.lag_seconds is not None:
        parts.append(human_duration(status.lag_seconds))
    if status.lag_bytes:
        parts.append(f"{human_size(status.lag_bytes)} of WAL")
    return f" (now {', '.join(parts)} behind)" if parts else ""
