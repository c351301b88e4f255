"""The WAL chain in the catalog: coverage, gaps, the recoverable range, archive freshness.

Every WAL archive run is one catalog entry (backup_type ``incremental``, method ``pg_receivewal``)
holding whole WAL segments from ``start_lsn`` (a segment boundary) to ``end_lsn`` (the boundary
after a ``pg_switch_wal()``), plus, in ``extra``, the recovery point the run guarantees:
``recoverable_lsn`` (the insert position just before the switch) and ``recoverable_time`` (the
primary's clock inside a marker transaction committed just before the switch; its commit record
is what lets recovery stop at any target time before it).

Entries chain when the next one starts at or before the previous one's end. A run of chained
entries is usable when a full backup ends inside it ("anchored"). Everything here is a pure
function of the manifests (and ``now``), so the RPO report can call it from the store alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from drflow.engines.postgres.lsn import format_lsn, parse_lsn
from drflow.store.catalog import Catalog, CatalogError
from drflow.store.manifest import BackupManifest
from drflow.units import human_duration

WAL_METHOD = "pg_receivewal"
BASE_METHOD = "pg_basebackup"
STOPPED_GRACE = 1.5
"""A WAL entry older than this many schedule intervals means collection stopped."""

ALERT_STOPPED = "wal_collection_stopped"
ALERT_LAG = "wal_archive_lag_exceeds_rpo"
ALERT_BROKEN = "wal_chain_broken"


class WalGapError(CatalogError):
    """WAL is missing between two entries (or before the first one); names both and the range."""

    def __init__(
        self,
        message: str,
        *,
        before: str | None = None,
        after: str | None = None,
        missing_from: str | None = None,
        missing_to: str | None = None,
    ) -> None:
        super().__init__(message)
        self.before = before
        self.after = after
        self.missing_from = missing_from
        self.missing_to = missing_to


@dataclass(frozen=True)
class RecoveryPoint:
    time: datetime
    lsn: int

    def describe(self, rounding: str = "down") -> str:
        """``2026-11-27T10:00:03.123Z (LSN 0/3000100)``; rounded to the millisecond towards the
        inside of a range (``up`` for a start, ``down`` for an end), so a printed bound is valid."""
        return f"{format_time(self.time, rounding)} (LSN {format_lsn(self.lsn)})"


@dataclass(frozen=True)
class RecoverableRange:
    """One stretch of time a component can be restored to: from the end of its oldest anchoring
    full backup to the recovery point of the last entry of the WAL run that backup ends in."""

    start: RecoveryPoint
    end: RecoveryPoint
    bases: tuple[BackupManifest, ...]
    """Full backups that end inside the run, oldest first."""
    wal: tuple[BackupManifest, ...]
    """The run's WAL entries in LSN order."""

    def describe(self) -> str:
        return f"from {self.start.describe('up')} to {self.end.describe('down')}"

    def contains_time(self, when: datetime) -> bool:
        return self.start.time <= when <= self.end.time

    def contains_lsn(self, lsn: int) -> bool:
        return self.start.lsn <= lsn <= self.end.lsn


@dataclass
class _Run:
    entries: list[BackupManifest] = field(default_factory=list)
    start: int = 0
    end: int = 0


def format_time(when: datetime, rounding: str = "down") -> str:
    micros = when.astimezone(UTC).microsecond
    millis = (math.ceil if rounding == "up" else math.floor)(micros / 1000)
    base = when.astimezone(UTC).replace(microsecond=0) + timedelta(milliseconds=millis)
    return base.strftime("%Y-%m-%dT%H:%M:%S.") + f"{base.microsecond // 1000:03d}Z"


def is_wal_entry(manifest: BackupManifest) -> bool:
    return manifest.method == WAL_METHOD and manifest.backup_type == "incremental"


def is_base_backup(manifest: BackupManifest) -> bool:
    return manifest.backup_type == "full" and manifest.end_lsn is not None


def is_pitr_base(manifest: BackupManifest) -> bool:
    """A full backup archived WAL can be replayed on by drflow's restore (pg_basebackup)."""
    return is_base_backup(manifest) and manifest.method == BASE_METHOD


def wal_entries(manifests: Sequence[BackupManifest]) -> list[BackupManifest]:
    """The WAL entries in LSN order."""
    entries = [m for m in manifests if is_wal_entry(m) and m.start_lsn and m.end_lsn]
    return sorted(entries, key=lambda m: (_lsn(m.start_lsn), _lsn(m.end_lsn), m.backup_id))


def recovery_point(manifest: BackupManifest) -> RecoveryPoint | None:
    """For a WAL entry, the point recovery can reach with it; for a full backup, its end."""
    if is_base_backup(manifest):
        return RecoveryPoint(manifest.finished_at, _lsn(manifest.end_lsn))
    when, lsn = manifest.extra.get("recoverable_time"), manifest.extra.get("recoverable_lsn")
    if not (isinstance(when, str) and isinstance(lsn, str)):
        return None
    return RecoveryPoint(datetime.fromisoformat(when), parse_lsn(lsn))


def _lsn(text: str | None) -> int:
    assert text is not None
    return parse_lsn(text)


def _runs(entries: Sequence[BackupManifest]) -> list[_Run]:
    runs: list[_Run] = []
    for entry in entries:
        start, end = _lsn(entry.start_lsn), _lsn(entry.end_lsn)
        if runs and start <= runs[-1].end:
            runs[-1].entries.append(entry)
            runs[-1].end = max(runs[-1].end, end)
        else:
            runs.append(_Run([entry], start, end))
    return runs


def _anchors(run: _Run, manifests: Sequence[BackupManifest]) -> list[BackupManifest]:
    bases = [m for m in manifests if is_pitr_base(m) and run.start <= _lsn(m.end_lsn) <= run.end]
    return sorted(bases, key=lambda m: (_lsn(m.end_lsn), m.backup_id))


def wal_coverage(catalog: Catalog, component: str) -> list[tuple[str, str]]:
    """The contiguous LSN stretches the stored WAL covers, oldest first."""
    return [(format_lsn(r.start), format_lsn(r.end)) for r in _runs(wal_entries(catalog.list_backups(component)))]


def chain_tip(manifests: Sequence[BackupManifest]) -> BackupManifest | None:
    """Where the next WAL run continues: the WAL entry that reaches furthest, or, before the first
    WAL entry, the newest full backup. None when there is neither."""
    entries = wal_entries(manifests)
    if entries:
        return max(entries, key=lambda m: (_lsn(m.end_lsn), m.finished_at))
    bases = [m for m in manifests if is_pitr_base(m)]
    return max(bases, key=lambda m: (_lsn(m.end_lsn), m.finished_at)) if bases else None


def check_chain(manifests: Sequence[BackupManifest], component: str = "") -> dict[str, Any]:
    """Check the WAL chain; raise WalGapError when the newest WAL cannot be used from any full backup.

    Gaps before a later full backup (which restarts the chain) are reported as warnings: the
    time inside them is not recoverable, and the recoverable ranges say so.
    """
    runs = _runs(wal_entries(manifests))
    warnings: list[str] = []
    for index, run in enumerate(runs):
        anchored = bool(_anchors(run, manifests))
        newest = index == len(runs) - 1
        if index == 0:
            if not anchored:
                bases = sorted((m for m in manifests if is_pitr_base(m)), key=lambda m: _lsn(m.end_lsn))
                first = run.entries[0]
                where = (
                    f"the newest full backup ({bases[-1].backup_id}) ends at {bases[-1].end_lsn}"
                    if bases
                    else "there is no full backup of the component in the store"
                )
                message = (
                    f"WAL entry {first.backup_id} of {component or first.component} starts at {first.start_lsn}, "
                    f"but no full backup ends inside its WAL (LSN {format_lsn(run.start)} to "
                    f"{format_lsn(run.end)}): {where}. "
                )
                if newest:
                    raise WalGapError(
                        message + "Take a new full backup to restart the WAL chain.",
                        after=first.backup_id,
                        missing_to=first.start_lsn,
                    )
                warnings.append(message + "That WAL cannot be used; later WAL restarts from a newer full backup.")
            continue
        previous = runs[index - 1]
        before, after = previous.entries[-1], run.entries[0]
        gap = (
            f"WAL gap in {component or after.component} between entries {before.backup_id} (ends at "
            f"{format_lsn(previous.end)}) and {after.backup_id} (starts at {after.start_lsn}): "
            f"WAL from {format_lsn(previous.end)} to {after.start_lsn} is missing from the store"
        )
        if not anchored and newest:
            raise WalGapError(
                gap + ", so nothing after it can be recovered. Take a new full backup to restart the WAL chain "
                "(WAL archiving then continues from it); the time inside the gap stays unrecoverable.",
                before=before.backup_id,
                after=after.backup_id,
                missing_from=format_lsn(previous.end),
                missing_to=after.start_lsn,
            )
        if anchored:
            warnings.append(gap + f"; the chain restarts at full backup {_anchors(run, manifests)[0].backup_id}.")
        else:
            warnings.append(gap + "; the WAL after it is unusable until a newer full backup.")
    return {
        "wal_entries": sum(len(r.entries) for r in runs),
        "coverage": [(format_lsn(r.start), format_lsn(r.end)) for r in runs],
        "warnings": warnings,
    }


def check_wal_chain(catalog: Catalog, component: str) -> dict[str, Any]:
    """check_chain over the component's catalog entries."""
    return check_chain(catalog.list_backups(component), component)


def ranges_from(manifests: Sequence[BackupManifest]) -> list[RecoverableRange]:
    """The recoverable ranges, oldest first; one per anchored WAL run that reaches past its backup."""
    ranges = []
    for run in _runs(wal_entries(manifests)):
        bases = _anchors(run, manifests)
        points = [p for p in (recovery_point(m) for m in run.entries) if p is not None]
        if not bases or not points:
            continue
        end = max(points, key=lambda p: p.lsn)
        start = recovery_point(bases[0])
        assert start is not None
        if end.lsn > start.lsn and end.time > start.time:
            ranges.append(RecoverableRange(start, end, tuple(bases), tuple(run.entries)))
    return ranges


def recoverable_ranges(catalog: Catalog, component: str) -> list[RecoverableRange]:
    return ranges_from(catalog.list_backups(component))


def recoverable_range(catalog: Catalog, component: str) -> RecoverableRange | None:
    """The newest recoverable range (the whole range when the chain has no gap), or None."""
    ranges = recoverable_ranges(catalog, component)
    return ranges[-1] if ranges else None


def describe_ranges(ranges: Sequence[RecoverableRange]) -> str:
    return " and ".join(r.describe() for r in ranges)


def status_from(
    manifests: Sequence[BackupManifest],
    component: str,
    now: datetime,
    expected_interval_s: float,
    rpo_s: float,
) -> dict[str, Any]:
    """wal_archive_status over a list of manifests."""
    entries = wal_entries(manifests)
    newest = max(entries, key=lambda m: m.finished_at) if entries else None
    alerts: list[dict[str, str]] = []
    status: dict[str, Any] = {
        "component": component,
        "checked_at": now.isoformat(),
        "expected_interval_s": expected_interval_s,
        "rpo_s": rpo_s,
        "newest_entry": None,
        "newest_finished_at": None,
        "archived_until": None,
        "archived_until_lsn": None,
        "age_s": None,
        "archive_lag_s": None,
    }
    stopped_after = expected_interval_s * STOPPED_GRACE
    if newest is None:
        alerts.append(
            {
                "code": ALERT_STOPPED,
                "message": f"no WAL of {component} has been archived yet: the incremental backup DAG has not "
                "completed a run; unpause it, or check why its runs fail",
            }
        )
    else:
        point = recovery_point(newest)
        age = (now - newest.finished_at).total_seconds()
        lag = (now - point.time).total_seconds() if point else age
        status.update(
            newest_entry=newest.backup_id,
            newest_finished_at=newest.finished_at.isoformat(),
            archived_until=point.time.isoformat() if point else None,
            archived_until_lsn=format_lsn(point.lsn) if point else None,
            age_s=round(age, 3),
            archive_lag_s=round(lag, 3),
        )
        if age > stopped_after:
            alerts.append(
                {
                    "code": ALERT_STOPPED,
                    "message": f"WAL collection of {component} stopped: the newest WAL entry {newest.backup_id} "
                    f"finished {human_duration(age)} ago, but a run is expected every "
                    f"{human_duration(expected_interval_s)} "
                    f"(alert after {human_duration(stopped_after)}); check the incremental backup DAG (paused? "
                    "failing?)",
                }
            )
        if lag > rpo_s:
            alerts.append(
                {
                    "code": ALERT_LAG,
                    "message": f"WAL of {component} is archived only up to {human_duration(lag)} ago, more than the "
                    "RPO of "
                    f"{human_duration(rpo_s)}: a disaster now would lose more than the RPO allows; run the incremental "
                    "backup DAG now and schedule it at least every RPO",
                }
            )
    try:
        chain = check_chain(manifests, component)
        status["chain_warnings"] = chain["warnings"]
    except WalGapError as exc:
        alerts.append({"code": ALERT_BROKEN, "message": str(exc)})
    status["alerts"] = alerts
    status["healthy"] = not alerts
    return status


def wal_archive_status(
    catalog: Catalog, component: str, now: datetime, expected_interval_s: float, rpo_s: float
) -> dict[str, Any]:
    """Freshness of a component's WAL archive at ``now``, from the catalog alone.

    Alerts (``alerts``: ``[{code, message}]``, ``healthy`` when empty):
    ``wal_collection_stopped`` when the newest WAL entry finished more than 1.5 schedule
    intervals ago (or none exists), ``wal_archive_lag_exceeds_rpo`` when the newest archived
    point is older than the RPO, ``wal_chain_broken`` when the newest WAL is unusable.
    """
    return status_from(catalog.list_backups(component), component, now, expected_interval_s, rpo_s)
