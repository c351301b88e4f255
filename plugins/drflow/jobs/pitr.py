"""Point-in-time recovery from the store: the right full backup plus the archived WAL, replayed up
to a target time or LSN. Shared by `drflow restore --target-time/--target-lsn` and the restore DAG.

:func:`plan_point_in_time` reads only the catalog and refuses a target the store cannot reach,
before anything is fetched or written; :func:`restore_to_point` carries the plan out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.lsn import parse_lsn, segment_number, segment_start
from drflow.engines.postgres.recovery import preload_driver, recover_backup, recovery_settings
from drflow.engines.postgres.restore import RestoreError
from drflow.hosts import Host
from drflow.jobs.restore import (
    NoIntactCopyError,
    copy_problem,
    fetch_wal,
    find_copies,
    restore_intact_copy,
    start_scratch_instance,
)
from drflow.store.base import StoreError
from drflow.store.catalog import Catalog
from drflow.store.fanout import group_problems
from drflow.store.manifest import BackupManifest
from drflow.store.wal import RecoverableRange, describe_ranges, ranges_from, recovery_point
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)


class TargetOutOfRangeError(ValueError):
    """The store cannot recover to that target; the message gives the exact recoverable range."""


@dataclass(frozen=True)
class RestorePlan:
    component: str
    base: BackupManifest
    wal: tuple[BackupManifest, ...]
    range: RecoverableRange
    target_time: datetime | None = None
    target_lsn: str | None = None

    def describe_target(self) -> str:
        if self.target_time is not None:
            return f"time {self.target_time.astimezone(UTC).isoformat()}"
        return f"LSN {self.target_lsn}"

    def to_dict(self) -> dict[str, Any]:
        """JSON for XCom and reports."""
        return {
            "component": self.component,
            "base_backup": self.base.backup_id,
            "wal_entries": [m.backup_id for m in self.wal],
            "target_time": self.target_time.isoformat() if self.target_time else None,
            "target_lsn": self.target_lsn,
            "recoverable_range": self.range.describe(),
            "wal_bytes": sum(m.stored_bytes for m in self.wal),
        }


@dataclass(frozen=True)
class PitrResult:
    plan: RestorePlan
    data_dir: Path
    replayed_lsn: str | None
    last_replayed_commit: str | None
    port: int | None
    """Where the restored server listens, when it was left running."""
    fetch_s: float
    lay_out_s: float
    recovery_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "data_dir": str(self.data_dir),
            "replayed_lsn": self.replayed_lsn,
            "last_replayed_commit": self.last_replayed_commit,
            "port": self.port,
            "fetch_s": round(self.fetch_s, 3),
            "lay_out_s": round(self.lay_out_s, 3),
            "recovery_s": round(self.recovery_s, 3),
        }


def parse_target_time(text: str) -> datetime:
    """An ISO 8601 time with a timezone (``2026-11-27T10:30:00Z``, ``…+02:00``), not in the future."""
    from drflow.when import parse_run_time

    return parse_run_time(text, "target time")


def plan_point_in_time(
    catalog: Catalog,
    component: str,
    target_time: datetime | None = None,
    target_lsn: str | None = None,
    *,
    backup_id: str | None = None,
) -> RestorePlan:
    """The base backup and WAL entries that reach the target; TargetOutOfRangeError, naming the
    exact recoverable range, when the store cannot reach it. Reads the catalog only."""
    if (target_time is None) == (target_lsn is None):
        raise ValueError("give exactly one of a target time and a target LSN")
    if target_time is not None and (target_time.tzinfo is None or target_time.utcoffset() is None):
        raise ValueError("the target time needs a timezone")
    lsn = parse_lsn(target_lsn) if target_lsn is not None else None
    target = f"time {target_time.astimezone(UTC).isoformat()}" if target_time else f"LSN {target_lsn}"
    manifests = catalog.list_backups(component)
    ranges = ranges_from(manifests)
    where = f"{catalog.spec}/{component}"  # callers name the storage target
    if not ranges:
        raise TargetOutOfRangeError(
            f"cannot restore {where} to {target}: nothing is recoverable to a point in time there; that needs a "
            "full backup and WAL archived after it (an incremental pg_receivewal policy). "
            "Restore a full backup as it is (without a target), or archive WAL first"
        )
    if backup_id is not None:
        ranges = [r for r in ranges if any(b.backup_id == backup_id for b in r.bases)]
        if not ranges:
            raise TargetOutOfRangeError(
                f"cannot restore {where} to {target} from backup {backup_id}: no archived WAL continues from that "
                "backup (or it is not a full backup in this store); leave the backup out to let drflow choose one"
            )

    def reaches(r: RecoverableRange) -> bool:
        return r.contains_time(target_time) if target_time is not None else r.contains_lsn(lsn or 0)

    chosen = next((r for r in reversed(ranges) if reaches(r)), None)
    if chosen is None:
        raise TargetOutOfRangeError(
            f"cannot restore {where} to {target}: it is recoverable {describe_ranges(ranges)}; "
            "choose a target in that range"
            + (" (the time between two ranges fell into a WAL gap)" if len(ranges) > 1 else "")
        )
    bases = [b for b in chosen.bases if backup_id in (None, b.backup_id) and _before_target(b, target_time, lsn)]
    if not bases:
        start = recovery_point(next(b for b in chosen.bases if b.backup_id == backup_id))
        assert start is not None
        raise TargetOutOfRangeError(
            f"cannot restore {where} to {target} from backup {backup_id}: that backup ends at "
            f"{start.describe('up')}, after the target; choose a later target or leave the backup out"
        )
    base = bases[-1]
    return RestorePlan(component, base, _wal_needed(chosen, base, target_time, lsn), chosen, target_time, target_lsn)


def _before_target(base: BackupManifest, target_time: datetime | None, lsn: int | None) -> bool:
    point = recovery_point(base)
    assert point is not None
    return point.time <= target_time if target_time is not None else point.lsn <= (lsn or 0)


def _wal_needed(
    chosen: RecoverableRange, base: BackupManifest, target_time: datetime | None, lsn: int | None
) -> tuple[BackupManifest, ...]:
    """The run's entries from the one holding the base's end up to the first that reaches the target."""
    assert base.end_lsn is not None
    segment_size = int(chosen.wal[0].extra.get("wal_segment_size") or 16 * 1024 * 1024)
    from_lsn = segment_start(segment_number(parse_lsn(base.end_lsn), segment_size), segment_size)
    until = None
    for entry in chosen.wal:
        point = recovery_point(entry)
        if point is None or parse_lsn(entry.end_lsn or "0/0") <= from_lsn:
            continue
        if (point.time >= target_time) if target_time is not None else (point.lsn >= (lsn or 0)):
            until = parse_lsn(entry.end_lsn or "0/0")
            break
    assert until is not None, "the range contains the target, so some entry reaches it"
    return tuple(
        m for m in chosen.wal if parse_lsn(m.end_lsn or "0/0") > from_lsn and parse_lsn(m.start_lsn or "0/0") < until
    )


def restore_to_point(
    catalog: Catalog,
    plan: RestorePlan,
    target_dir: Path,
    *,
    host: Host,
    bin_dir: Path,
    work_dir: str | None = None,
    socket_dir: Path | None = None,
    keep_running: bool = True,
    timeout: float = 1800.0,
) -> PitrResult:
    """Fetch and verify the base backup and the WAL (at the same time), lay them out in ``target_dir``
    (new or empty), replay up to the target and promote.

    The server keeps running on a free loopback port (``result.port``, socket and log in
    ``socket_dir``, default ``<target_dir>/../socket``) unless ``keep_running`` is false; then it
    is stopped cleanly. ``target_dir`` is marked incomplete until then (see
    :func:`~drflow.engines.postgres.recovery.recover_backup`); on failure it is emptied again, so a
    retry starts clean.
    """
    started = time.monotonic()
    preload_driver()
    with (
        scratch_dir(work_dir, f"pitr-{plan.base.backup_id}") as staging,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="pitr-wal") as pool,
    ):
        # Every checksum, the base backup's and the WAL's, is checked before anything is written; the WAL is
        # fetched while the base backup is.
        wal_fetch = pool.submit(fetch_wal, catalog, plan.wal, staging)
        base_files = catalog.fetch(plan.base, staging / "base")
        wal_files = wal_fetch.result()
        fetched = time.monotonic()
        try:
            recovered = recover_backup(
                base_files,
                wal_files,
                target_dir,
                host=host,
                bin_dir=bin_dir,
                recovery=recovery_settings(target_time=plan.target_time, target_lsn=plan.target_lsn),
                socket_dir=socket_dir or target_dir.parent / "socket",
                keep_running=keep_running,
                backup_id=plan.base.backup_id,
                target=plan.describe_target(),
                timeout=timeout,
            )
        except RestoreError as exc:
            raise RestoreError(
                f"point-in-time recovery of {plan.component} to {plan.describe_target()} failed: {exc}\n"
                "fix the cause and retry"
            ) from exc
    log.info(
        "recovered %s to %s from %s + %d WAL entries: replayed to %s, last commit %s",
        plan.component,
        plan.describe_target(),
        plan.base.backup_id,
        len(plan.wal),
        recovered.replayed_lsn,
        recovered.last_replayed_commit,
    )
    return PitrResult(
        plan=plan,
        data_dir=target_dir,
        replayed_lsn=recovered.replayed_lsn,
        last_replayed_commit=recovered.last_replayed_commit,
        port=recovered.cluster.port if keep_running else None,
        fetch_s=fetched - started,
        lay_out_s=recovered.lay_out_s,
        recovery_s=recovered.recovery_s,
    )


@dataclass(frozen=True)
class TargetPlan:
    """A point-in-time plan from the catalog of one storage target."""

    target: str
    catalog: Catalog
    plan: RestorePlan


def plan_in_targets(
    catalogs: Sequence[tuple[str, Catalog]],
    component: str,
    target_time: datetime | None = None,
    target_lsn: str | None = None,
    *,
    backup_id: str | None = None,
) -> list[TargetPlan]:
    """The plan of every target whose catalog reaches the target, in target order.

    TargetOutOfRangeError, one line per distinct problem, when none does; a target that cannot be
    read is one of those problems, never the end of the others."""
    plans: list[TargetPlan] = []
    problems: list[tuple[str, str]] = []
    for name, catalog in catalogs:
        try:
            plan = plan_point_in_time(catalog, component, target_time, target_lsn, backup_id=backup_id)
        except TargetOutOfRangeError as exc:
            problems.append((name, str(exc)))
            continue
        except StoreError as exc:
            problems.append((name, f"cannot be read: {copy_problem(exc)}"))
            continue
        plans.append(TargetPlan(name, catalog, plan))
    if not plans:
        raise TargetOutOfRangeError("nothing was changed:\n  " + "\n  ".join(group_problems(problems)))
    return plans


def restore_to_point_from_any(
    plans: Sequence[TargetPlan],
    target_dir: Path,
    *,
    host: Host,
    bin_dir: Path,
    work_dir: str | None = None,
    socket_dir: Path | None = None,
    keep_running: bool = True,
    say: Callable[[str], None] = log.warning,
) -> tuple[PitrResult, TargetPlan]:
    """:func:`restore_to_point` from the first target whose copies of the base backup and WAL are
    intact; a corrupt or unreachable copy is skipped (said through ``say``) before anything is written."""
    skipped: list[tuple[str, str]] = []
    for candidate in plans:
        try:
            result = restore_to_point(
                candidate.catalog,
                candidate.plan,
                target_dir,
                host=host,
                bin_dir=bin_dir,
                work_dir=work_dir,
                socket_dir=socket_dir,
                keep_running=keep_running,
            )
        except StoreError as exc:
            skipped.append((candidate.target, copy_problem(exc)))
            continue
        for line in group_problems(skipped):
            say(f"skipped the copy of backup {plans[0].plan.base.backup_id} and its WAL in {line}")
        return result, candidate
    raise NoIntactCopyError(
        f"no intact copy of the backup and WAL that reach {plans[0].plan.describe_target()}; nothing was "
        "restored:\n  " + "\n  ".join(group_problems(skipped)) + "\nRestore to another target time, or a full "
        "backup as it is (see `drflow backups list`), and check the storage targets"
    )


# -- the restore DAG's trigger form ------------------------------------------


def check_restore_dir(value: object) -> Path:
    """The ``restore_to`` of a trigger form: an absolute path of a new or empty directory."""
    if not value or not isinstance(value, str):
        raise ValueError("restore_to is required: the absolute path of a new or empty directory on the worker host")
    path = Path(value)
    if not path.is_absolute():
        raise ValueError(f"restore_to {value!r} is relative; give an absolute path on the worker host")
    if path.exists() and not path.is_dir():
        raise ValueError(f"restore_to {value} is a file, not a directory; choose a new or empty directory")
    if path.is_dir():
        from drflow.engines.postgres.incomplete import check_incomplete

        check_incomplete(path)  # a killed restore's leftovers are named as such
    if path.is_dir() and any(path.iterdir()):
        raise ValueError(f"restore_to {value} is not empty; choose a new or empty directory")
    return path


def plan_from_form(
    catalogs: Sequence[tuple[str, Catalog]],
    component: str,
    *,
    backup_id: str | None,
    target_time: str | None,
    target_lsn: str | None,
) -> dict[str, Any]:
    """Check the targets of a restore request and plan it over the storage targets; a JSON dict for XCom."""
    if target_time and target_lsn:
        raise ValueError("give a target time or a target LSN, not both")
    if target_time or target_lsn:
        if target_lsn:
            parse_lsn(target_lsn)
        plans = plan_in_targets(
            catalogs,
            component,
            target_time=parse_target_time(target_time) if target_time else None,
            target_lsn=target_lsn,
            backup_id=backup_id,
        )
        return {"mode": "point_in_time", **plans[0].plan.to_dict(), "planned_from": plans[0].target}
    choice = find_copies(catalogs, component, backup_id)
    return {
        "mode": "backup",
        "component": component,
        "base_backup": choice.backup_id,
        "wal_entries": [],
        "target_time": None,
        "target_lsn": None,
        "planned_from": choice.copies[0].target,
        "unreadable_targets": group_problems(choice.unreadable),
    }


def execute_planned(
    catalogs: Sequence[tuple[str, Catalog]],
    planned: Mapping[str, Any],
    *,
    host: Host,
    bin_dir: Path,
    work_dir: str | None = None,
) -> dict[str, Any]:
    """Carry out what :func:`plan_from_form` planned (plus ``restore_to`` and ``start``), from the first
    storage target whose copy is intact."""
    target_dir = Path(planned["restore_to"])
    start = bool(planned.get("start"))
    component = str(planned["component"])
    skipped: list[str] = []
    if planned["mode"] == "point_in_time":
        # The same base as planned, even if a newer full backup finished in between.
        plans = plan_in_targets(
            catalogs,
            component,
            target_time=datetime.fromisoformat(planned["target_time"]) if planned.get("target_time") else None,
            target_lsn=planned.get("target_lsn"),
            backup_id=planned["base_backup"],
        )
        result, used = restore_to_point_from_any(
            plans, target_dir, host=host, bin_dir=bin_dir, work_dir=work_dir, keep_running=start, say=skipped.append
        )
        for line in skipped:
            log.warning("%s", line)
        return {**result.to_dict(), "storage_target": used.target, "skipped_copies": skipped}
    choice = find_copies(catalogs, component, planned["base_backup"])
    restored, copy = restore_intact_copy(
        choice, target_dir, host=host, bin_dir=bin_dir, work_dir=work_dir, say=skipped.append, sync=start
    )
    for line in skipped:
        log.warning("%s", line)
    manifest = copy.manifest
    port = None
    if start:
        try:
            port = start_scratch_instance(target_dir, host=host, bin_dir=bin_dir).port
        except RestoreError:
            host.run(["find", str(target_dir), "-mindepth", "1", "-delete"], check=False)
            raise
    return {
        **planned,
        "data_dir": str(target_dir),
        "port": port,
        "replayed_lsn": manifest.end_lsn,
        "last_replayed_commit": None,
        "fetch_s": round(restored.fetch_s, 3),
        "lay_out_s": round(restored.lay_out_s, 3),
        "storage_target": copy.target,
        "skipped_copies": skipped,
    }


def verify_restored(result: Mapping[str, Any], database: str) -> dict[str, Any]:
    """Connect to a restored server left running; report where recovery stopped and any problem."""
    import psycopg

    conn = PgConnInfo(host="127.0.0.1", port=int(result["port"]), user="postgres", dbname=database)
    try:
        with psycopg.connect(**conn.libpq_kwargs(connect_timeout=10), autocommit=True) as db:
            row = db.execute(
                "select pg_is_in_recovery(), current_setting('transaction_read_only'),"
                " pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()"
            ).fetchone()
    except psycopg.Error as exc:
        return {"problems": [f"cannot query the restored server {conn.describe()}: {str(exc).strip()}"]}
    assert row is not None
    in_recovery, read_only, replayed_lsn, last_commit = row
    problems = []
    if in_recovery or read_only == "on":
        problems.append(f"the restored server {conn.describe()} is still in recovery or read-only")
    target_time = result.get("target_time")
    if target_time and last_commit and last_commit > datetime.fromisoformat(target_time):
        problems.append(f"recovery replayed a commit at {last_commit.isoformat()}, after the target {target_time}")
    target_lsn = result.get("target_lsn")
    if target_lsn and replayed_lsn and parse_lsn(replayed_lsn) < parse_lsn(target_lsn):
        problems.append(f"recovery stopped at {replayed_lsn}, before the target LSN {target_lsn}")
    return {
        "server": conn.describe(),
        "replayed_lsn": replayed_lsn,
        "last_replayed_commit": last_commit.isoformat() if last_commit else None,
        "problems": problems,
    }
