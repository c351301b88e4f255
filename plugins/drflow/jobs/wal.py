"""One WAL archive run into every target of an incremental policy: the job behind `archive_wal`.

Each run stores, as one catalog entry, every WAL segment since the end of the previous entry
of the component (the previous WAL entry, or the newest full backup before the first one), up
to a ``pg_switch_wal()`` made by the run. The entry's manifest is written last, and the
replication slot is advanced only once no target that needs the WAL misses it, so a failed or
retried run never loses WAL and never leaves two entries for one backup id. Targets are independent
(:mod:`drflow.store.fanout`): one that fails does not stop the others.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.lsn import format_lsn, parse_lsn, segment_number, segment_start
from drflow.engines.postgres.wal import (
    SlotState,
    SwitchPoint,
    WalError,
    WalUnavailableError,
    advance_slot,
    close_segment,
    compress_segments,
    ensure_slot,
    receive_wal,
)
from drflow.jobs.request import PolicyBackupRequest
from drflow.spec.slots import legacy_wal_slot_name
from drflow.store.base import StoreError
from drflow.store.factory import target_catalogs
from drflow.store.fanout import Fanout
from drflow.store.manifest import BackupManifest
from drflow.store.wal import WAL_METHOD, WalGapError, chain_tip, is_pitr_base
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)


class NoFullBackupError(LookupError):
    """WAL archiving needs a full backup to build on."""


def default_slot(component: str) -> str:
    """``drflow_wal_user_database`` for ``user-database``: the default WAL slot before slot names carried
    the spec (plans now use :func:`drflow.spec.slots.wal_slot_name`); tests and benchmarks name slots with it."""
    return legacy_wal_slot_name(component)


@dataclass(frozen=True, kw_only=True)
class WalArchiveRequest(PolicyBackupRequest):
    conn: PgConnInfo
    bin_dir: Path
    slot: str
    timeout_s: float | None = None


def archive_wal(request: WalArchiveRequest) -> BackupManifest:
    """Store the WAL since the previous entry as one catalog entry in every target; idempotent per backup id.

    Targets are independent: one that fails does not stop the others, a retry copies the committed
    entry into the targets that miss it, and the run fails naming the failed targets. The slot
    advances only once no target that needs this WAL lacks it (see :func:`_advance`).
    """
    catalogs = target_catalogs(request.spec_name, request.targets, lock=request.object_lock())
    fanout = Fanout.begin(catalogs, request.component, request.backup_id)
    if (recorded := fanout.recorded) is not None:
        fanout.fill_missing(request.work_dir)
        _advance(request, fanout, recorded.end_lsn)  # the try that stored it may have died before advancing
        return fanout.finish(recorded)
    fanout.require_target()

    listings = _listings(request, fanout)
    tip = _tip(request, fanout, listings)
    slot = ensure_slot(request.conn, request.slot)
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    point = close_segment(request.conn)
    _check_same_cluster(request, tip, point)

    with scratch_dir(request.work_dir, f"wal-{request.backup_id}") as staging:
        parent, restarted = tip, None
        try:
            files = _receive(request, staging / "wal", tip.end_lsn, tip.timeline or point.timeline, point)
        except WalUnavailableError as exc:
            live = {c.name for c in fanout.pending}
            restart = _restart_base({n: m for n, m in listings.items() if n in live}, tip)
            if restart is None:
                raise _gap_error(request, tip, slot, exc) from exc
            log.warning("%s; restarting the WAL chain at full backup %s", exc, restart.backup_id)
            restarted = {"after": tip.backup_id, "missing_from": tip.end_lsn, "restart_at": restart.backup_id}
            parent = restart
            try:
                files = _receive(
                    request, staging / "wal-restart", restart.end_lsn, restart.timeline or point.timeline, point
                )
            except WalUnavailableError as again:
                raise _gap_error(request, restart, slot, again) from again
        raw_bytes = sum(f.stat().st_size for f in files)
        stored_files = compress_segments(files, request.compression, request.timeout_s)
        collect_s = time.monotonic() - t0
        objects = fanout.put_objects({f.name: f for f in stored_files})

    assert parent.end_lsn is not None
    first_byte = segment_start(segment_number(parse_lsn(parent.end_lsn), point.segment_size), point.segment_size)
    finished_at = datetime.now(UTC)
    manifest = BackupManifest(
        backup_id=request.backup_id,
        spec=request.spec_name,
        component=request.component,
        policy=request.policy,
        backup_type="incremental",
        method=WAL_METHOD,
        parent_id=parent.backup_id,
        started_at=started_at,
        finished_at=finished_at,
        start_lsn=format_lsn(first_byte),
        end_lsn=point.end_lsn,
        timeline=point.timeline,
        pg_version=point.server_version,
        system_identifier=point.system_identifier,
        database_size_bytes=raw_bytes,
        compression=request.compression,
        objects=objects,
        retention_days=request.retention_days,
        retention_policy=request.retention_policy,
        expires_at=finished_at + timedelta(days=request.retention_days),
        targets=[name for name, _ in catalogs],
        extra={
            "segments": [f.name for f in files],
            "wal_segment_size": point.segment_size,
            "recoverable_lsn": point.recoverable_lsn,
            "recoverable_time": point.recoverable_time.isoformat(),
            "switch_lsn": point.switch_lsn,
            "slot": slot.name,
            "slot_created": slot.created,
            **({"slot_note": slot.note} if slot.note else {}),
            **({"restarted_after_gap": restarted} if restarted else {}),
            "collect_s": round(collect_s, 3),
        },
    )
    fanout.commit(manifest)
    _advance(request, fanout, manifest.end_lsn)
    log.info(
        "WAL entry %s: %d segments, %s..%s, %d bytes stored",
        manifest.backup_id,
        len(files),
        manifest.start_lsn,
        manifest.end_lsn,
        manifest.stored_bytes,
    )
    return fanout.finish(manifest)


def _listings(request: WalArchiveRequest, fanout: Fanout) -> dict[str, list[BackupManifest]]:
    """The catalog of every pending target; a target that cannot be read fails for this run."""
    listings = {}
    for copy in fanout.pending:
        try:
            listings[copy.name] = copy.catalog.list_backups(request.component)
        except (StoreError, OSError) as exc:
            fanout.fail(copy, str(exc))
    return listings


def _tip(request: WalArchiveRequest, fanout: Fanout, listings: dict[str, list[BackupManifest]]) -> BackupManifest:
    """Where this run starts: the chain tip of the target furthest behind.

    A target with no full backup cannot use WAL yet: it fails for this run (naming the fix) and the
    others go on; only when no target has one does the run stop with NoFullBackupError.
    """
    tips = {}
    for copy in fanout.pending:
        tip = chain_tip(listings[copy.name])
        if tip is None:
            fanout.fail(
                copy,
                f"no full backup of {request.spec_name}/{request.component} in {copy.catalog.store.describe()}: WAL is "
                "only restorable on top of a base backup; run the component's full backup DAG (into this target) first",
                needs_it=False,
            )
            continue
        tips[copy.name] = tip
    if not tips:
        why = [c.error for c in fanout.failed if not c.needs_it] or [c.error for c in fanout.failed]
        raise NoFullBackupError(why[0] if why else "no storage target")
    # With targets out of step, start early enough for the one that is furthest behind.
    return min(tips.values(), key=lambda m: parse_lsn(m.end_lsn or "0/0"))


def _receive(
    request: WalArchiveRequest, staging: Path, start_lsn: str | None, timeline: int, point: SwitchPoint
) -> list[Path]:
    assert start_lsn is not None
    return receive_wal(
        request.conn,
        staging,
        start_lsn=start_lsn,
        timeline=timeline,
        end_lsn=point.end_lsn,
        segment_size=point.segment_size,
        bin_dir=request.bin_dir,
        timeout=request.timeout_s,
    )


def _check_same_cluster(request: WalArchiveRequest, tip: BackupManifest, point: SwitchPoint) -> None:
    if tip.system_identifier and tip.system_identifier != point.system_identifier:
        raise WalError(
            f"{request.conn.describe()} is another PostgreSQL cluster (system identifier {point.system_identifier}) "
            f"than the one backup {tip.backup_id} was taken from ({tip.system_identifier}); its WAL cannot extend "
            "that chain. Take a new full backup of this primary first"
        )


def _restart_base(listings: dict[str, list[BackupManifest]], tip: BackupManifest) -> BackupManifest | None:
    """The newest full backup, present in every target, that ends after the chain's tip."""
    assert tip.end_lsn is not None
    common = set.intersection(*({m.backup_id for m in listing} for listing in listings.values()))
    candidates = [
        m
        for m in next(iter(listings.values()))
        if is_pitr_base(m) and m.backup_id in common and parse_lsn(m.end_lsn or "0/0") > parse_lsn(tip.end_lsn)
    ]
    return max(candidates, key=lambda m: parse_lsn(m.end_lsn or "0/0")) if candidates else None


def _gap_error(request: WalArchiveRequest, tip: BackupManifest, slot: SlotState, cause: Exception) -> WalGapError:
    why = f" ({slot.note})" if slot.created else ""
    return WalGapError(
        f"WAL gap in {request.spec_name}/{request.component}: {cause}\n"
        f"The WAL after {tip.backup_id} (from LSN {tip.end_lsn}) was recycled before it was stored{why}, "
        "so nothing was stored and nothing after that point can be recovered from this chain. "
        "Take a new full backup now (trigger the component's full backup DAG) to restart the WAL chain: "
        f"the slot {slot.name} keeps WAL from now on, and the next run continues from that backup.",
        before=tip.backup_id,
        missing_from=tip.end_lsn,
    )


def _advance(request: WalArchiveRequest, fanout: Fanout, end_lsn: str | None) -> None:
    """Advance the slot to end_lsn unless a target that needs this WAL does not hold it.

    A target that failed in this run keeps the slot where it is, so the primary keeps the WAL that
    target misses and the next run (which starts at the tip of the target furthest behind) stores it
    there: WAL is never lost for any target. A target without a full backup does not need WAL and
    does not hold the slot. A target that stays down keeps WAL on the primary: every run fails naming
    it, and the slot's retained WAL is what to watch (README: Decisions).
    """
    if not end_lsn:
        return
    holding = [c.name for c in fanout.failed if c.needs_it]
    if holding:
        log.warning(
            "not advancing WAL slot %s to %s: target(s) %s do not hold this WAL yet; the primary keeps it "
            "until they do",
            request.slot,
            end_lsn,
            ", ".join(holding),
        )
        return
    try:
        advance_slot(request.conn, request.slot, end_lsn)
    except (WalError, psycopg.Error) as exc:
        # The WAL is stored; the slot only holds it longer. The next run advances it.
        log.warning("could not advance WAL slot %s to %s: %s", request.slot, end_lsn, exc)
