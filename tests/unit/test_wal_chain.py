"""The WAL chain in the catalog: LSNs, coverage, gaps, recoverable ranges, freshness, PITR planning.

Catalog entries are written into a real LocalStore; only their manifests matter here (no objects).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drflow.engines.postgres.lsn import format_lsn, parse_lsn, parse_segment_name, segment_name
from drflow.jobs.pitr import (
    TargetOutOfRangeError,
    check_restore_dir,
    parse_target_time,
    plan_from_form,
    plan_point_in_time,
)
from drflow.store.catalog import Catalog
from drflow.store.local import LocalStore
from drflow.store.manifest import BackupManifest
from drflow.store.wal import (
    ALERT_BROKEN,
    ALERT_LAG,
    ALERT_STOPPED,
    WalGapError,
    chain_tip,
    check_wal_chain,
    recoverable_range,
    recoverable_ranges,
    status_from,
    wal_archive_status,
    wal_coverage,
)

T0 = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
SEG = 16 * 1024 * 1024


def _full(backup_id: str, end_lsn: str, finished: datetime) -> BackupManifest:
    return BackupManifest(
        backup_id=backup_id,
        spec="s",
        component="db",
        policy="daily-full",
        backup_type="full",
        method="pg_basebackup",
        started_at=finished - timedelta(seconds=5),
        finished_at=finished,
        start_lsn=format_lsn(parse_lsn(end_lsn) - 0x100),
        end_lsn=end_lsn,
        timeline=1,
        retention_days=7,
    )


def _wal(backup_id: str, start: str, end: str, recoverable: datetime, parent: str) -> BackupManifest:
    return BackupManifest(
        backup_id=backup_id,
        spec="s",
        component="db",
        policy="wal",
        backup_type="incremental",
        method="pg_receivewal",
        parent_id=parent,
        started_at=recoverable - timedelta(seconds=1),
        finished_at=recoverable + timedelta(seconds=2),
        start_lsn=start,
        end_lsn=end,
        timeline=1,
        retention_days=7,
        extra={
            "recoverable_time": recoverable.isoformat(),
            "recoverable_lsn": format_lsn(parse_lsn(end) - SEG + 0x200),
            "wal_segment_size": SEG,
        },
    )


def _catalog(tmp_path: Path, *manifests: BackupManifest) -> Catalog:
    catalog = Catalog(LocalStore(tmp_path / "store", fsync=False), "s")
    for manifest in manifests:
        catalog.commit(manifest)
    return catalog


F1 = _full("f1", "0/2000100", T0)
W1 = _wal("w1", "0/2000000", "0/4000000", T0 + timedelta(hours=1), "f1")
W2 = _wal("w2", "0/4000000", "0/5000000", T0 + timedelta(hours=2), "w1")
W3 = _wal("w3", "0/5000000", "0/7000000", T0 + timedelta(hours=3), "w2")


def test_lsn_and_segment_names_round_trip() -> None:
    assert parse_lsn("0/3000100") == 0x3000100
    assert format_lsn(parse_lsn("1A/FF000028")) == "1A/FF000028"
    assert segment_name(1, 0x1A * 256 + 0xFF) == "000000010000001A000000FF"
    assert parse_segment_name("000000020000001A000000FF") == (2, 0x1A * 256 + 0xFF)
    with pytest.raises(ValueError, match="e.g. 0/3000100"):
        parse_lsn("3000100")


def test_a_contiguous_chain_has_one_range_from_the_full_backup_to_the_newest_wal(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, F1, W1, W2, W3)
    assert wal_coverage(catalog, "db") == [("0/2000000", "0/7000000")]
    assert check_wal_chain(catalog, "db") == {
        "wal_entries": 3,
        "coverage": [("0/2000000", "0/7000000")],
        "warnings": [],
    }
    span = recoverable_range(catalog, "db")
    assert span is not None
    assert (span.start.time, format_lsn(span.start.lsn)) == (T0, "0/2000100")
    assert (span.end.time, format_lsn(span.end.lsn)) == (T0 + timedelta(hours=3), "0/6000200")
    assert span.describe() == (
        "from 2026-11-27T10:00:00.000Z (LSN 0/2000100) to 2026-11-27T13:00:00.000Z (LSN 0/6000200)"
    )
    assert chain_tip(catalog.list_backups("db")) == W3
    assert chain_tip([F1]) == F1


def test_a_missing_middle_entry_is_a_gap_naming_both_neighbours_and_the_range(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, F1, W1, W3)
    with pytest.raises(WalGapError) as gap:
        check_wal_chain(catalog, "db")
    message = str(gap.value)
    assert "between entries w1 (ends at 0/4000000) and w3 (starts at 0/5000000)" in message
    assert "WAL from 0/4000000 to 0/5000000 is missing" in message
    assert "Take a new full backup to restart the WAL chain" in message
    assert (gap.value.before, gap.value.after) == ("w1", "w3")
    assert (gap.value.missing_from, gap.value.missing_to) == ("0/4000000", "0/5000000")
    # What is before the gap stays recoverable; the time after it does not.
    [span] = recoverable_ranges(catalog, "db")
    assert span.end.time == T0 + timedelta(hours=1)


def test_wal_without_a_full_backup_underneath_is_a_gap(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, _full("f0", "0/1000100", T0 - timedelta(days=1)), W2, W3)
    with pytest.raises(WalGapError, match=r"no full backup ends inside its WAL .* \(f0\) ends at 0/1000100"):
        check_wal_chain(catalog, "db")


def test_a_newer_full_backup_restarts_the_chain_and_the_gap_stays_unrecoverable(tmp_path: Path) -> None:
    f2 = _full("f2", "0/5000200", T0 + timedelta(hours=2, minutes=30))
    w3 = _wal("w3", "0/5000000", "0/7000000", T0 + timedelta(hours=3), "f2")
    catalog = _catalog(tmp_path, F1, W1, f2, w3)
    report = check_wal_chain(catalog, "db")
    assert len(report["warnings"]) == 1 and "chain restarts at full backup f2" in report["warnings"][0]
    first, second = recoverable_ranges(catalog, "db")
    assert (first.end.time, second.start.time) == (T0 + timedelta(hours=1), T0 + timedelta(hours=2, minutes=30))
    with pytest.raises(TargetOutOfRangeError) as refused:
        plan_point_in_time(catalog, "db", T0 + timedelta(hours=2))
    assert "to 2026-11-27T11:00:00.000Z (LSN 0/3000200) and from 2026-11-27T12:30:00.000Z" in str(refused.value)
    assert "WAL gap" in str(refused.value)
    plan = plan_point_in_time(catalog, "db", T0 + timedelta(hours=2, minutes=45))
    assert (plan.base.backup_id, [m.backup_id for m in plan.wal]) == ("f2", ["w3"])


def test_the_plan_takes_the_newest_base_before_the_target_and_only_the_wal_it_needs(tmp_path: Path) -> None:
    f2 = _full("f2", "0/4000300", T0 + timedelta(hours=1, minutes=30))
    catalog = _catalog(tmp_path, F1, W1, f2, W2, W3)
    early = plan_point_in_time(catalog, "db", T0 + timedelta(minutes=30))
    assert (early.base.backup_id, [m.backup_id for m in early.wal]) == ("f1", ["w1"])
    late = plan_point_in_time(catalog, "db", T0 + timedelta(hours=1, minutes=45))
    assert (late.base.backup_id, [m.backup_id for m in late.wal]) == ("f2", ["w2"])
    pinned = plan_point_in_time(catalog, "db", T0 + timedelta(hours=1, minutes=45), backup_id="f1")
    assert [m.backup_id for m in pinned.wal] == ["w1", "w2"]
    by_lsn = plan_point_in_time(catalog, "db", target_lsn="0/5000000")
    assert (by_lsn.base.backup_id, [m.backup_id for m in by_lsn.wal]) == ("f2", ["w2", "w3"])


def test_targets_outside_the_range_are_refused_with_the_exact_range(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, F1, W1, W2)
    expected = (
        "it is recoverable from 2026-11-27T10:00:00.000Z (LSN 0/2000100) to 2026-11-27T12:00:00.000Z "
        "(LSN 0/4000200); choose a target in that range"
    )
    for target in (T0 - timedelta(seconds=1), T0 + timedelta(hours=2, microseconds=1)):
        with pytest.raises(TargetOutOfRangeError) as refused:
            plan_point_in_time(catalog, "db", target)
        assert expected in str(refused.value)
    with pytest.raises(TargetOutOfRangeError, match="LSN 0/4000201: it is recoverable from"):
        plan_point_in_time(catalog, "db", target_lsn="0/4000201")
    with pytest.raises(TargetOutOfRangeError, match="needs a full backup and WAL archived after it"):
        plan_point_in_time(_catalog(tmp_path / "empty", F1), "db", T0)
    with pytest.raises(ValueError, match="exactly one"):
        plan_point_in_time(catalog, "db", T0, "0/3000000")


def test_the_printed_range_bounds_are_inside_the_range(tmp_path: Path) -> None:
    odd = T0 + timedelta(microseconds=123_456)
    catalog = _catalog(tmp_path, _full("f1", "0/2000100", odd), W1)
    [span] = recoverable_ranges(catalog, "db")
    printed = span.describe().split(" ")[1]
    assert printed == "2026-11-27T10:00:00.124Z"  # rounded up: a start printed as .123 would be refused
    assert plan_point_in_time(catalog, "db", parse_target_time(printed)).base.backup_id == "f1"


def test_target_times_need_a_timezone() -> None:
    assert parse_target_time("2026-11-27T10:30:00Z") == datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
    assert parse_target_time("2026-11-27T12:30:00+02:00") == datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"has no timezone.*2026-11-27T10:30:00Z for UTC"):
        parse_target_time("2026-11-27T10:30:00")
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_target_time("yesterday")


def test_the_restore_form_is_checked_before_anything_is_touched(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, F1, W1)
    with pytest.raises(ValueError, match="restore_to is required"):
        check_restore_dir(None)
    with pytest.raises(ValueError, match="is relative"):
        check_restore_dir("restored")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "PG_VERSION").write_text("15\n")
    with pytest.raises(ValueError, match="is not empty"):
        check_restore_dir(str(busy))
    assert check_restore_dir(str(tmp_path / "new")) == tmp_path / "new"
    with pytest.raises(ValueError, match="not both"):
        plan_from_form(
            [("t", catalog)], "db", backup_id=None, target_time="2026-11-27T10:30:00Z", target_lsn="0/3000000"
        )
    planned = plan_from_form(
        [("t", catalog)], "db", backup_id=None, target_time="2026-11-27T10:30:00Z", target_lsn=None
    )
    assert planned["mode"] == "point_in_time" and planned["wal_entries"] == ["w1"]
    assert (
        plan_from_form([("t", catalog)], "db", backup_id=None, target_time=None, target_lsn=None)["base_backup"] == "f1"
    )


def test_archive_status_is_healthy_after_a_run_and_alerts_when_collection_stops(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, F1, W1)
    just_after = W1.finished_at + timedelta(seconds=10)
    healthy = wal_archive_status(catalog, "db", just_after, expected_interval_s=3600, rpo_s=300)
    assert healthy["healthy"] and healthy["alerts"] == []
    assert healthy["newest_entry"] == "w1" and healthy["archive_lag_s"] == 12.0

    within_grace = wal_archive_status(catalog, "db", W1.finished_at + timedelta(seconds=5399), 3600, 7200)
    assert within_grace["healthy"]
    stopped = wal_archive_status(catalog, "db", W1.finished_at + timedelta(seconds=5401), 3600, 7200)
    assert [a["code"] for a in stopped["alerts"]] == [ALERT_STOPPED]
    assert "stopped" in stopped["alerts"][0]["message"] and "expected every 1h" in stopped["alerts"][0]["message"]

    lagging = wal_archive_status(catalog, "db", just_after, expected_interval_s=3600, rpo_s=5)
    assert [a["code"] for a in lagging["alerts"]] == [ALERT_LAG]

    nothing = status_from([F1], "db", just_after, 3600, 300)
    assert [a["code"] for a in nothing["alerts"]] == [ALERT_STOPPED]
    broken = status_from([F1, W1, W3], "db", W3.finished_at, 3600, 7200)
    assert [a["code"] for a in broken["alerts"]] == [ALERT_BROKEN]
