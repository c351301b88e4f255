"""The replication slots on a primary, against the slots the spec says drflow owns there.

:func:`read_slots` is a check: one statement, in a read-only transaction, with a statement timeout.
:func:`assess_slots` matches what it found with the spec's :class:`~drflow.spec.slots.SlotClaim`
list and raises the replication watch's alerts (:data:`~drflow.engines.postgres.replication_report.ALERT_CODES`):

- ``slot_retention_exceeded`` (critical): a slot drflow owns, or a drflow slot nobody owns any more,
  holds back more WAL than its limit, or the server already stopped reserving WAL for it
  (``wal_status`` ``unreserved`` or ``lost``, past ``max_slot_wal_keep_size``);
- ``slot_orphaned`` (warning): a slot named like drflow's (``drflow_…``) that no policy or replica of
  the specs in hand uses: a policy was removed, renamed, or the slot has an old-style name. It holds
  WAL forever; drop it with ``drflow slots drop``.

:func:`drop_slot` is the one writing function, for ``drflow slots drop``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import psycopg

from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.replication_report import ALERT_CODES, Alert
from drflow.spec.slots import DRFLOW_PREFIX, SlotClaim, SlotWatch, legacy_wal_slot_name
from drflow.units import human_size

SlotState = Literal["in use", "missing", "orphan", "unowned", "not drflow's"]

SLOTS_QUERY = (
    "select slot_name::text, slot_type, active, restart_lsn::text,"
    " case when restart_lsn is null then null"
    " else greatest(0, pg_wal_lsn_diff(case when pg_is_in_recovery() then pg_last_wal_receive_lsn()"
    " else pg_current_wal_lsn() end, restart_lsn))::bigint end,"
    " wal_status, safe_wal_size, database::text"
    " from pg_replication_slots order by slot_name"
)


class SlotError(RuntimeError):
    """Slots could not be read or dropped; the message says why and what to do."""


@dataclass
class SlotReport:
    """One slot: what the server says, who owns it according to the spec, and what is wrong."""

    name: str
    state: SlotState
    owner: str | None = None
    """``WAL policy hourly-wal of shop/orders``; None for an orphan or a slot that is not drflow's."""
    kind: str | None = None
    slot_type: str | None = None
    active: bool | None = None
    restart_lsn: str | None = None
    retained_bytes: int | None = None
    wal_status: str | None = None
    safe_wal_size: int | None = None
    limit_bytes: int | None = None
    note: str = ""
    alerts: list[Alert] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SlotRow:
    """One row of pg_replication_slots, as :func:`read_slots` reads it."""

    name: str
    slot_type: str
    active: bool
    restart_lsn: str | None
    retained_bytes: int | None
    wal_status: str | None
    safe_wal_size: int | None
    database: str | None


def read_slots(conn: PgConnInfo, *, timeout_s: float = 10.0) -> list[SlotRow]:
    """Every replication slot of ``conn``'s server: one read-only statement, at most ``timeout_s``."""
    ms = max(1, int(timeout_s * 1000))
    try:
        # Not autocommit: the one statement runs in a transaction that the server opens read-only.
        with psycopg.connect(
            **{**conn.libpq_kwargs(), "connect_timeout": max(1, int(timeout_s))},
            options=f"-c statement_timeout={ms} -c default_transaction_read_only=on",
        ) as db:
            rows = db.execute(SLOTS_QUERY).fetchall()
            db.rollback()
    except psycopg.Error as exc:
        hint = (
            "; grant the connection's role SELECT on pg_replication_slots"
            if isinstance(exc, psycopg.errors.InsufficientPrivilege)
            else "; check that the primary is up and its Airflow connection points at it"
        )
        raise SlotError(f"cannot read the replication slots of {conn.describe()}: {str(exc).strip()}{hint}") from exc
    return [
        SlotRow(
            name=str(r[0]),
            slot_type=str(r[1]),
            active=bool(r[2]),
            restart_lsn=r[3],
            retained_bytes=None if r[4] is None else int(r[4]),
            wal_status=r[5],
            safe_wal_size=None if r[6] is None else int(r[6]),
            database=r[7],
        )
        for r in rows
    ]


def assess_slots(
    rows: Sequence[SlotRow],
    claims: Sequence[SlotClaim],
    *,
    orphan_limit_bytes: int,
    components: Iterable[str] = (),
    orphan_prefixes: Sequence[str] | None = None,
    command: str = "drflow slots drop --spec <spec> --component <component> --slot {slot}",
) -> list[SlotReport]:
    """Every slot on the server and every claimed one, with its owner, state and alerts.

    ``components``: the components whose primary this is (their old-style WAL slot names are
    orphans); ``orphan_prefixes``: when given, an unclaimed ``drflow_`` slot is an orphan only with
    one of these prefixes (one spec's own names), else it is ``unowned`` (maybe another spec's):
    listed, no alert. ``command`` tells how to drop a slot (``{slot}`` is filled in).
    """
    owners: dict[str, list[SlotClaim]] = {}
    for claim in claims:
        owners.setdefault(claim.slot, []).append(claim)
    legacy = {legacy_wal_slot_name(c): c for c in components}
    found = {row.name: row for row in rows}
    reports: list[SlotReport] = []
    for row in rows:
        owned = owners.get(row.name, [])
        report = SlotReport(
            name=row.name,
            state="in use" if owned else _unclaimed_state(row.name, legacy, orphan_prefixes),
            owner="; ".join(dict.fromkeys(c.describe() for c in owned)) or None,
            kind=owned[0].kind if owned else None,
            slot_type=row.slot_type,
            active=row.active,
            restart_lsn=row.restart_lsn,
            retained_bytes=row.retained_bytes,
            wal_status=row.wal_status,
            safe_wal_size=row.safe_wal_size,
            limit_bytes=min(c.limit_bytes for c in owned) if owned else None,
        )
        drop = command.format(slot=row.name)
        if report.state == "orphan":
            report.limit_bytes = orphan_limit_bytes
            if row.name in legacy:
                successors = [c.slot for c in claims if c.kind == "wal" and c.component == legacy[row.name]]
                report.note = f"old-style WAL slot name of {legacy[row.name]}" + (
                    f", now {', '.join(successors)}" if successors else ""
                )
            _orphan_alert(report, drop)
        if report.state in ("in use", "orphan"):
            _retention_alert(report, drop)
        reports.append(report)
    for slot, owned in owners.items():
        if slot not in found:
            first = owned[0]
            reports.append(
                SlotReport(
                    name=slot,
                    state="missing",
                    owner="; ".join(dict.fromkeys(c.describe() for c in owned)),
                    kind=first.kind,
                    limit_bytes=first.limit_bytes,
                    note="created by the next WAL run" if first.kind == "wal" else "",
                )
            )
    return reports


def watch_slots(conn: PgConnInfo, watch: SlotWatch, *, timeout_s: float = 10.0) -> list[SlotReport]:
    """:func:`read_slots` then :func:`assess_slots` with the settings of :func:`drflow.spec.slots.slot_watch`."""
    return assess_slots(
        read_slots(conn, timeout_s=timeout_s),
        watch.claims,
        orphan_limit_bytes=watch.orphan_limit_bytes,
        components=watch.components,
        orphan_prefixes=watch.orphan_prefixes,
        command=watch.command,
    )


def _unclaimed_state(name: str, legacy: Mapping[str, str], prefixes: Sequence[str] | None) -> SlotState:
    if not name.startswith(DRFLOW_PREFIX):
        return "not drflow's"
    if name in legacy or prefixes is None or name.startswith(tuple(prefixes)):
        return "orphan"
    return "unowned"


def _orphan_alert(report: SlotReport, drop: str) -> None:
    held = human_size(report.retained_bytes or 0)
    why = f"it is the {report.note}" if report.note else "no policy or replica of the spec uses it (a removed policy?)"
    streams = "Something streams from it, but" if report.active else "Nothing streams from it and"
    report.alerts.append(
        _alert(
            "slot_orphaned",
            f"replication slot '{report.name}' is named like drflow's but has no owner: {why}. {streams} nothing "
            f"advances it: it holds back {held} of WAL, more with every write. Once no spec on this cluster uses "
            "it (for an old-style WAL slot: once the WAL policy has run with its new slot), drop it: " + drop,
        )
    )


def _retention_alert(report: SlotReport, drop: str) -> None:
    retained, limit = report.retained_bytes or 0, report.limit_bytes
    whose = f"of {report.owner}" if report.owner else "(no owner)"
    if report.wal_status in ("unreserved", "lost"):
        report.alerts.append(
            _alert(
                "slot_retention_exceeded",
                f"replication slot '{report.name}' {whose} is past the primary's max_slot_wal_keep_size "
                f"(wal_status '{report.wal_status}'): the server "
                + ("already removed WAL it needed" if report.wal_status == "lost" else "may remove WAL it needs")
                + ". For a WAL policy, run its DAG now and take a new full backup if it reports a gap; for a "
                f"replica, get it streaming or rebuild it; for an orphan: {drop}",
            )
        )
    elif limit is not None and retained > limit:
        fix = (
            "run the WAL policy's DAG (and fix what makes it fail: the store, the connection) so it stores the "
            "WAL and advances the slot"
            if report.kind == "wal"
            else f"get the replica streaming again, or drop the slot: {drop}"
            if report.kind == "replica"
            else f"drop it: {drop}"
        )
        report.alerts.append(
            _alert(
                "slot_retention_exceeded",
                f"replication slot '{report.name}' {whose} holds back {human_size(retained)} of WAL on the primary, "
                f"more than its limit of {human_size(limit)}: pg_wal grows until the disk is full. {fix[0].upper()}"
                f"{fix[1:]}; raise datastore.slot_retention_limit only if the disk has room",
            )
        )


def _alert(code: str, message: str) -> Alert:
    return Alert(code=code, severity=ALERT_CODES[code], replica=None, message=message)


def drop_slot(conn: PgConnInfo, slot: str, *, timeout_s: float = 30.0) -> None:
    """Drop ``slot`` on ``conn``'s server; refuses (SlotError) a slot in use or one that does not exist."""
    try:
        with psycopg.connect(
            **{**conn.libpq_kwargs(), "connect_timeout": max(1, int(timeout_s))},
            options=f"-c statement_timeout={max(1, int(timeout_s * 1000))}",
            autocommit=True,
        ) as db:
            row = db.execute(
                "select active, active_pid from pg_replication_slots where slot_name = %s", (slot,)
            ).fetchone()
            if row is None:
                raise SlotError(f"there is no replication slot '{slot}' on {conn.describe()}; nothing was dropped")
            if row[0]:
                raise SlotError(
                    f"replication slot '{slot}' on {conn.describe()} is in use (walsender pid {row[1]}); nothing was "
                    "dropped. Stop what streams from it first (a replica, pg_receivewal), then drop it"
                )
            db.execute("select pg_drop_replication_slot(%s)", (slot,))
    except psycopg.Error as exc:
        raise SlotError(f"cannot drop replication slot '{slot}' on {conn.describe()}: {str(exc).strip()}") from exc
