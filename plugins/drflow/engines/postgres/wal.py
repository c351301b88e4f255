"""Collect WAL from a primary with ``pg_receivewal`` over a replication connection (pull model).

One collection run:

1. :func:`ensure_slot`: a physical replication slot (created with WAL reserved at once) keeps
   every segment on the primary until drflow has stored it. Only drflow moves the slot, with
   :func:`advance_slot`, after the segments are committed to the store: ``pg_receivewal`` runs
   *without* ``-S``, because with a slot it confirms what it wrote to local disk, which would
   let the primary recycle WAL that a failed upload never stored.
2. :func:`close_segment`: a tiny marker transaction (its commit record carries a timestamp, so
   recovery to any target time before it can stop), then ``pg_switch_wal()``. Everything up to
   the next segment boundary is then complete on the primary.
3. :func:`receive_wal`: ``pg_receivewal --endpos=<boundary - 1> --no-loop`` from the segment
   holding the previous run's end, into an empty staging directory. An empty ``<segment>.partial``
   placed there first makes it start exactly at that segment (its documented resume behaviour),
   whatever the slot says. With the end position one byte before the boundary it stops the
   moment the last segment is complete, so every file is a whole segment; no ``.partial`` file
   is ever stored.
4. :func:`compress_segments`: zstd (or gzip) per segment: a switched segment is mostly zeros.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from drflow import process
from drflow.engines.postgres.conninfo import PgConnInfo, replication_hint
from drflow.engines.postgres.lsn import (
    format_lsn,
    is_segment_name,
    parse_lsn,
    parse_segment_name,
    segment_name,
    segment_number,
)
from drflow.hosts import tail
from drflow.units import human_duration

log = logging.getLogger(__name__)
PARTIAL = ".partial"
HISTORY = ".history"
COMPRESSED_SUFFIX = {"zstd": ".zst", "gzip": ".gz"}


class WalError(RuntimeError):
    """WAL could not be collected; the message says why and what to do."""


class WalUnavailableError(WalError):
    """The primary no longer has the WAL the run must start from: the chain has a gap."""


@dataclass(frozen=True)
class SlotState:
    name: str
    created: bool
    restart_lsn: str | None
    note: str = ""


@dataclass(frozen=True)
class SwitchPoint:
    """What one ``pg_switch_wal()`` guarantees about the WAL before it."""

    recoverable_lsn: str
    """Insert position after the marker commit, before the switch: a target LSN up to here is reached."""
    recoverable_time: datetime
    """The primary's clock inside the marker transaction: a target time before it is reached."""
    switch_lsn: str
    end_lsn: str
    """The segment boundary after the switch: all WAL before it is in complete segments."""
    timeline: int
    segment_size: int
    server_version: str
    system_identifier: str


def _connect(conn: PgConnInfo, what: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(**conn.libpq_kwargs(connect_timeout=10), autocommit=True)
    except psycopg.OperationalError as exc:
        raise WalError(
            f"cannot connect to {conn.describe()} to {what}: {str(exc).strip()}; "
            "check that the primary is up and the Airflow connection points at it"
        ) from exc


def _privilege_hint(exc: psycopg.Error, conn: PgConnInfo) -> str:
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return (
            f"; role {conn.user!r} needs REPLICATION and EXECUTE on pg_switch_wal() "
            f"(ALTER ROLE {conn.user} REPLICATION; GRANT EXECUTE ON FUNCTION pg_switch_wal() TO {conn.user})"
        )
    return ""


def ensure_slot(conn: PgConnInfo, slot: str) -> SlotState:
    """Make sure the physical slot exists and holds WAL; create it (reserving WAL now) if not.

    A slot whose WAL the primary already removed (``wal_status = 'lost'``, after
    ``max_slot_wal_keep_size``) is dropped and created again; the collection run that follows
    then finds out whether the WAL it needs is still there.
    """
    with _connect(conn, "check the WAL slot") as db:
        try:
            row = db.execute(
                "select slot_type, restart_lsn::text, wal_status from pg_replication_slots where slot_name = %s",
                (slot,),
            ).fetchone()
            note = ""
            if row is not None:
                slot_type, restart_lsn, wal_status = row
                if slot_type != "physical":
                    raise WalError(
                        f"replication slot {slot!r} on {conn.describe()} is a {slot_type} slot; "
                        "set another `slot:` name in the backup policy (drflow needs a physical slot of its own)"
                    )
                if wal_status != "lost":
                    return SlotState(slot, False, str(restart_lsn) if restart_lsn else None)
                db.execute("select pg_drop_replication_slot(%s)", (slot,))
                note = "the slot had lost its WAL (max_slot_wal_keep_size?) and was created again"
            created = db.execute(
                "select lsn::text from pg_create_physical_replication_slot(%s, true)", (slot,)
            ).fetchone()
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.errors.DuplicateObject):
                return ensure_slot(conn, slot)  # created by a concurrent run in between
            raise WalError(
                f"cannot set up replication slot {slot!r} on {conn.describe()}: {str(exc).strip()}"
                + _privilege_hint(exc, conn)
            ) from exc
    restart = str(created[0]) if created and created[0] else None
    log.warning("created WAL slot %s on %s (WAL reserved from %s) %s", slot, conn.describe(), restart, note)
    return SlotState(slot, True, restart, note or "the slot did not exist and was created")


def close_segment(conn: PgConnInfo) -> SwitchPoint:
    """Commit a marker transaction, then ``pg_switch_wal()``; return what the switch guarantees."""
    try:
        with _connect(conn, "close the current WAL segment") as db:
            with db.transaction():
                marker = db.execute("select clock_timestamp(), pg_current_xact_id()").fetchone()
            row = db.execute(
                "select pg_current_wal_insert_lsn()::text,"
                " current_setting('server_version'),"
                " (select system_identifier::text from pg_control_system()),"
                " (select setting::bigint from pg_settings where name = 'wal_segment_size')"
            ).fetchone()
            switched = db.execute("select s::text, pg_walfile_name(s) from pg_switch_wal() s").fetchone()
    except psycopg.Error as exc:
        raise WalError(
            f"pg_switch_wal() on {conn.describe()} failed: {str(exc).strip()}" + _privilege_hint(exc, conn)
        ) from exc
    assert marker is not None and row is not None and switched is not None
    recoverable_lsn, version, sysid, segment_size = row
    switch_lsn, walfile = switched
    size = int(str(segment_size))
    switch = parse_lsn(str(switch_lsn))
    end = -(-switch // size) * size  # the switch record's segment ends at the next boundary
    return SwitchPoint(
        recoverable_lsn=str(recoverable_lsn),
        recoverable_time=marker[0],  # type: ignore[arg-type]
        switch_lsn=str(switch_lsn),
        end_lsn=format_lsn(end),
        timeline=int(str(walfile)[:8], 16),
        segment_size=size,
        server_version=str(version).split()[0],
        system_identifier=str(sysid),
    )


def receive_wal(
    conn: PgConnInfo,
    staging_dir: Path,
    *,
    start_lsn: str,
    timeline: int,
    end_lsn: str,
    segment_size: int,
    bin_dir: Path,
    timeout: float | None = None,
) -> list[Path]:
    """Stream the complete segments from the one holding ``start_lsn`` up to the boundary
    ``end_lsn`` into ``staging_dir`` (new or empty); return them (plus any timeline history
    files) in order.

    Raises :class:`WalUnavailableError` when the primary no longer has the first segment.
    """
    start, end = parse_lsn(start_lsn), parse_lsn(end_lsn)
    if end % segment_size:
        raise ValueError(f"end_lsn {end_lsn} is not a segment boundary")
    staging_dir.mkdir(parents=True, exist_ok=True)
    if any(staging_dir.iterdir()):
        raise WalError(f"staging directory {staging_dir} is not empty; pass a new directory")
    first, last = segment_number(start, segment_size), segment_number(end, segment_size)
    if first >= last:
        return []
    seed = staging_dir / (segment_name(timeline, first, segment_size) + PARTIAL)
    seed.touch()
    argv = [
        str(bin_dir / "pg_receivewal"),
        "-D",
        str(staging_dir),
        # pg_receivewal stops once it is *past* endpos: one byte before the boundary makes it stop
        # as the last segment completes, instead of waiting for the next WAL record.
        f"--endpos={format_lsn(end - 1)}",
        "--no-loop",
        "--no-sync",  # the files are read once, for upload, right after
        "--no-password",
        "--verbose",
        "-d",
        conn.dsn(),
    ]
    try:
        result = process.run(argv, env={**os.environ, **conn.env()}, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        stderr = str(exc.stderr or "")
        raise WalError(
            f"pg_receivewal from {conn.describe()} did not reach {end_lsn} within {human_duration(exc.timeout)} and "
            "was stopped\n"
            f"{tail(stderr)}\nraise the policy's timeout, or check the primary's load and network"
        ) from None
    except FileNotFoundError as exc:
        raise WalError(f"cannot run {argv[0]}: {exc.strerror}; set the datastore's bin_dir") from exc
    if result.returncode != 0:
        stderr = result.stderr
        if "has already been removed" in stderr:
            raise WalUnavailableError(
                f"the primary {conn.describe()} no longer has WAL segment "
                f"{segment_name(timeline, first, segment_size)} (from LSN {start_lsn}):\n{tail(stderr, 3)}"
            )
        raise WalError(
            f"pg_receivewal from {conn.describe()} failed with exit code {result.returncode}:\n{tail(stderr)}\n"
            + _receive_hint(stderr)
        )
    return _collected(staging_dir, first, last, segment_size)


def _receive_hint(stderr: str) -> str:
    text = stderr.lower()
    if "not in this server's history" in text or "timeline" in text:
        return (
            "hint: the primary is on another timeline than the stored WAL (a failover?): take a new full "
            "backup of the new primary to start a new WAL chain"
        )
    fallback = "hint: is the primary reachable over a replication connection, and did it stay up?"
    return replication_hint(stderr) or fallback


def _collected(staging_dir: Path, first: int, last: int, segment_size: int) -> list[Path]:
    segments: dict[int, list[tuple[int, Path]]] = {}
    partial: list[tuple[int, int, Path]] = []
    history: list[Path] = []
    for path in sorted(staging_dir.iterdir()):
        name = path.name
        if name.endswith(HISTORY):
            history.append(path)
        elif name.endswith(PARTIAL) and is_segment_name(name[: -len(PARTIAL)]):
            tli, segno = parse_segment_name(name[: -len(PARTIAL)], segment_size)
            partial.append((segno, tli, path))
        elif is_segment_name(name):
            tli, segno = parse_segment_name(name, segment_size)
            segments.setdefault(segno, []).append((tli, path))
    missing = [n for n in range(first, last) if n not in segments]
    if missing:
        raise WalError(
            f"pg_receivewal ended without {len(missing)} of the {last - first} expected segments "
            f"(first missing: number {missing[0]}); files: {sorted(p.name for p in staging_dir.iterdir())[:10]}; "
            "retry the run"
        )
    for segno, tli, path in partial:
        # A segment left partial by a timeline switch is complete under the next timeline's name.
        if not any(other > tli for other, _ in segments.get(segno, [])):
            raise WalError(f"pg_receivewal left {path.name} incomplete; retry the run")
        path.unlink()
    ordered = [path for segno in sorted(segments) for _, path in sorted(segments[segno])]
    return ordered + history


def compress_segments(files: list[Path], compression: str, timeout: float | None = None) -> list[Path]:
    """Compress every file with the zstd tool (``.zst``, or ``.gz`` for gzip), removing the
    originals; ``none`` keeps them."""
    if compression == "none" or not files:
        return files
    if compression not in COMPRESSED_SUFFIX:
        raise ValueError(f"WAL compression must be zstd, gzip or none, not {compression!r}")
    if shutil.which("zstd") is None:
        raise WalError("the zstd command is not installed on this worker; install zstd or set compression: none")
    fmt = ["--format=gzip"] if compression == "gzip" else ["-3"]
    argv = ["zstd", "-q", *fmt, "--rm", *(str(f) for f in files)]
    try:
        result = process.run(argv, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise WalError(
            f"compressing {len(files)} WAL files took over {human_duration(exc.timeout)} and was stopped; "
            "raise the policy's timeout"
        ) from None
    if result.returncode != 0:
        raise WalError(f"compressing the WAL segments failed:\n{tail(result.stderr)}\nis the disk full?")
    compressed = [f.with_name(f.name + COMPRESSED_SUFFIX[compression]) for f in files]
    for path in compressed:
        path.chmod(0o600)
    return compressed


def advance_slot(conn: PgConnInfo, slot: str, lsn: str) -> str | None:
    """Let the primary recycle WAL before ``lsn`` (stored by now); return the slot's new restart LSN.

    Never moves the slot backwards; returns None (and logs) when the slot is gone.
    """
    with _connect(conn, "advance the WAL slot") as db:
        row = db.execute("select restart_lsn::text from pg_replication_slots where slot_name = %s", (slot,)).fetchone()
        if row is None:
            log.warning("WAL slot %s is gone from %s; the next run recreates it", slot, conn.describe())
            return None
        current = str(row[0]) if row[0] else None
        if current and parse_lsn(current) >= parse_lsn(lsn):
            return current
        moved = db.execute(
            "select end_lsn::text from pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, lsn)
        ).fetchone()
    return str(moved[0]) if moved else None


def drop_slot(conn: PgConnInfo, slot: str) -> bool:
    """Drop the WAL slot if it exists and is idle (after retiring a WAL policy); True if dropped."""
    with _connect(conn, "drop the WAL slot") as db:
        row = db.execute("select active from pg_replication_slots where slot_name = %s", (slot,)).fetchone()
        if row is None:
            return False
        if row[0]:
            raise WalError(f"replication slot {slot!r} is in use; stop whatever streams from it first")
        db.execute("select pg_drop_replication_slot(%s)", (slot,))
    return True
