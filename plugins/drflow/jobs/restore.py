"""Restore a backup from the catalog into a data directory; shared by `drflow restore` and the operators.

Works from the store alone: the Airflow metadata database may be lost in the same disaster.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from drflow.engines.postgres.cluster import LocalCluster, free_port
from drflow.engines.postgres.restore import lay_out_backup, start_restored
from drflow.hosts import Host
from drflow.store.base import StoreError
from drflow.store.catalog import Catalog, CorruptBackupError
from drflow.store.fanout import group_problems
from drflow.store.manifest import BackupManifest
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)
T = TypeVar("T")


class NoBackupError(LookupError):
    """Nothing restorable matches; the message says what exists and what to do."""


class NoIntactCopyError(NoBackupError):
    """Every copy of the chosen backup is corrupt or unreachable; the message suggests an intact one."""


PHYSICAL_FULL_METHOD = "pg_basebackup"
RESTORE_HINTS = {
    "pg_receivewal": "archived WAL replays on top of a base backup: use --target-time or --target-lsn instead",
    "pg_dump": "restore tables from a logical dump with `drflow restore-table`",
    "pgbackrest": "restore it with pgBackRest (`pgbackrest --stanza=… restore`, see `drflow pgbackrest-config`)",
}


@dataclass(frozen=True)
class RestoreResult:
    manifest: BackupManifest
    data_dir: Path
    fetch_s: float
    lay_out_s: float


def is_restorable(manifest: BackupManifest) -> bool:
    """A full pg_basebackup: what this restore lays out (WAL replays on one, dumps restore elsewhere)."""
    return manifest.method == PHYSICAL_FULL_METHOD and manifest.backup_type == "full"


def choose_backup(
    catalog: Catalog, component: str, backup_id: str | None = None, policy: str | None = None
) -> BackupManifest:
    """The requested backup, or the newest complete one (of a policy, when given)."""
    if backup_id:
        try:
            manifest = catalog.get(component, backup_id)
        except LookupError as exc:
            known = [m.backup_id for m in catalog.list_backups(component) if is_restorable(m)][-5:]
            raise NoBackupError(
                f"backup {backup_id!r} of component {component!r} is not in {catalog.store.describe()}; "
                f"newest known: {', '.join(known) or 'none'} (see `drflow backups list`)"
            ) from exc
        if manifest.method != PHYSICAL_FULL_METHOD:
            raise NoBackupError(
                f"backup {backup_id!r} is a {manifest.backup_type} {manifest.method} backup, not a base backup; "
                + RESTORE_HINTS.get(manifest.method, "choose a pg_basebackup backup (see `drflow backups list`)")
            )
        return manifest
    # Archived WAL only replays on top of a base backup; logical dumps and pgBackRest backups restore with
    # their own tools, so only pg_basebackup entries are candidates here.
    fulls = [m for m in catalog.list_backups(component) if is_restorable(m) and policy in (None, m.policy)]
    if not fulls:
        what = f"of policy {policy!r} " if policy else ""
        raise NoBackupError(
            f"no complete backup {what}of component {component!r} in {catalog.store.describe()}; "
            "run its backup DAG first, or restore from another storage target"
        )
    return fulls[-1]


def restore_backup(
    catalog: Catalog,
    manifest: BackupManifest,
    target_dir: Path,
    *,
    host: Host,
    bin_dir: Path,
    work_dir: str | None = None,
    sync: bool = False,
) -> RestoreResult:
    """Download and verify every object, then lay the backup out in target_dir and run pg_verifybackup.

    Nothing is written to target_dir before every object's checksum matched, so a corrupt backup
    changes nothing. ``sync``: a server starts on it next (see :func:`lay_out_backup`).
    """
    with scratch_dir(work_dir, f"restore-{manifest.backup_id}") as staging:
        started = time.monotonic()
        files = catalog.fetch(manifest, staging / "objects")
        fetched = time.monotonic()
        lay_out_backup(files, target_dir, host=host, bin_dir=bin_dir, backup_id=manifest.backup_id, sync=sync)
        laid_out = time.monotonic()
    log.info(
        "restored %s into %s (fetch %.1fs, lay out and verify %.1fs)",
        manifest.backup_id,
        target_dir,
        fetched - started,
        laid_out - fetched,
    )
    return RestoreResult(manifest, target_dir, fetched - started, laid_out - fetched)


def fetch_wal(catalog: Catalog, entries: Sequence[BackupManifest], staging: Path) -> dict[str, Path]:
    """Every segment of the WAL entries, each checked against its sha256: two entries at a time, two segments
    of each (an hourly archive is many entries of a few segments)."""
    files: dict[str, Path] = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fetch-wal") as pool:
        for fetched in pool.map(lambda entry: catalog.fetch(entry, staging / entry.backup_id, workers=2), entries):
            files.update(fetched)
    return files


def start_scratch_instance(data_dir: Path, *, host: Host, bin_dir: Path, timeout: float = 300) -> LocalCluster:
    """Start a restored data directory on a free loopback port (drills, `drflow restore --start`)."""
    socket_dir = data_dir.parent / "socket"
    host.make_private_dir(socket_dir)
    return start_restored(
        data_dir, port=free_port(), socket_dir=socket_dir, bin_dir=bin_dir, host=host, timeout=timeout
    )


# -- copies of one backup in several targets ----------------------------------


@dataclass(frozen=True)
class BackupKind:
    """Which catalog entries a restore can use, and how its messages name them."""

    accepts: Callable[[BackupManifest], bool]
    noun: str
    """What one is called: ``base backup``."""
    purpose: str
    """What a refused ``--backup`` cannot do: ``be restored``."""
    listing: str
    """The heading of the candidates named in a refusal: ``Restorable backups``."""
    hints: Mapping[str, str]
    """What to do instead with a backup of another method."""
    first: str
    """What to do when there is none: ``run its full backup DAG first``."""


BASE_BACKUPS = BackupKind(
    accepts=is_restorable,
    noun="base backup",
    purpose="be restored",
    listing="Restorable backups",
    hints=RESTORE_HINTS,
    first="run its full backup DAG first",
)


@dataclass(frozen=True)
class BackupCopy:
    """One backup as one storage target holds it."""

    target: str
    catalog: Catalog
    manifest: BackupManifest


@dataclass
class CopyChoice:
    """The backup a restore uses, its copies in target order, and the targets that could not be read."""

    backup_id: str
    copies: list[BackupCopy]
    older: list[list[BackupCopy]] = field(default_factory=list)
    """Copies of the older restorable backups, newest first (for the hint when no copy is intact)."""
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    kind: BackupKind = BASE_BACKUPS


def find_copies(
    catalogs: Sequence[tuple[str, Catalog]],
    component: str,
    backup_id: str | None = None,
    *,
    policy: str | None = None,
    before: datetime | None = None,
    kind: BackupKind = BASE_BACKUPS,
) -> CopyChoice:
    """The requested backup, or the newest restorable one (of ``kind``) in any target (of a policy, finished
    before ``before``), with every copy of it. A target that cannot be read is skipped (and named), so one
    unreachable target never hides the backups of the others."""
    by_id: dict[str, list[BackupCopy]] = {}
    unreadable: list[tuple[str, str]] = []
    every: list[BackupManifest] = []
    for name, catalog in catalogs:
        try:
            manifests = catalog.list_backups(component)
        except (StoreError, OSError) as exc:
            unreadable.append((name, f"cannot be read: {exc}"))
            continue
        every.extend(manifests)
        for manifest in manifests:
            if kind.accepts(manifest):
                by_id.setdefault(manifest.backup_id, []).append(BackupCopy(name, catalog, manifest))
    if unreadable and not by_id and len(unreadable) == len(catalogs):
        raise NoBackupError("no storage target could be read:\n  " + "\n  ".join(group_problems(unreadable)))
    newest_first = sorted(by_id.values(), key=lambda cs: (cs[0].manifest.finished_at, cs[0].manifest.backup_id))[::-1]
    if backup_id is not None:
        if backup_id not in by_id:
            known = [cs[0].manifest.backup_id for cs in newest_first[:5]]
            other = next((m for m in every if m.backup_id == backup_id), None)
            if other is not None:
                why = f"it is a {other.backup_type} {other.method} backup, not a {kind.noun}; " + kind.hints.get(
                    other.method, f"choose a {kind.noun}"
                )
            else:
                why = "no storage target holds it"
            raise NoBackupError(
                f"backup {backup_id!r} of component {component!r} cannot {kind.purpose}: {why}. "
                f"{kind.listing}, newest first: {', '.join(known) or 'none'} (see `drflow backups list`)"
                + _unreadable_note(unreadable)
            )
        chosen = by_id[backup_id]
        older = [cs for cs in newest_first if cs[0].manifest.finished_at < chosen[0].manifest.finished_at]
        return CopyChoice(backup_id, chosen, older, unreadable, kind)
    eligible = [
        cs
        for cs in newest_first
        if policy in (None, cs[0].manifest.policy) and (before is None or cs[0].manifest.finished_at < before)
    ]
    if not eligible:
        what = f"of policy {policy!r} " if policy else ""
        when = f"finished before {before.isoformat()} " if before else ""
        raise NoBackupError(
            f"no complete {kind.noun} {what}{when}of component {component!r} in any storage target; "
            f"{kind.first}" + _unreadable_note(unreadable)
        )
    return CopyChoice(eligible[0][0].manifest.backup_id, eligible[0], eligible[1:], unreadable, kind)


def _unreadable_note(unreadable: Sequence[tuple[str, str]]) -> str:
    if not unreadable:
        return ""
    return "\n(skipped " + "; ".join(group_problems(list(unreadable))) + ")"


def restore_intact_copy(
    choice: CopyChoice,
    target_dir: Path,
    *,
    host: Host,
    bin_dir: Path,
    work_dir: str | None = None,
    say: Callable[[str], None] = log.warning,
    sync: bool = False,
) -> tuple[RestoreResult, BackupCopy]:
    """Restore the chosen backup from its first intact copy, in target order (see :func:`first_intact`;
    ``sync``: a server starts on it next, see :func:`~drflow.engines.postgres.restore.lay_out_backup`)."""

    def restore(copy: BackupCopy) -> RestoreResult:
        return restore_backup(
            copy.catalog, copy.manifest, target_dir, host=host, bin_dir=bin_dir, work_dir=work_dir, sync=sync
        )

    return first_intact(choice, restore, say=say)


def first_intact(
    choice: CopyChoice, use: Callable[[BackupCopy], T], *, say: Callable[[str], None] = log.warning
) -> tuple[T, BackupCopy]:
    """``use`` the chosen backup's first intact copy, in target order; return what it returned and that copy.

    ``use`` must check the copy (fetch it, every object against its sha256) before it changes anything: a
    copy it finds corrupt or unreachable (a StoreError or OSError) is skipped, saying which and why through
    ``say``, and the next is tried. When no copy is intact, NoIntactCopyError names each target's problem and
    suggests the newest older backup that has an intact copy.
    """
    skipped: list[tuple[str, str]] = []
    for copy in choice.copies:
        try:
            result = use(copy)
        except (StoreError, OSError) as exc:
            skipped.append((copy.target, copy_problem(exc)))
            continue
        for line in group_problems(skipped):
            say(f"skipped the copy of backup {choice.backup_id} in {line}")
        return result, copy
    raise NoIntactCopyError(
        f"no intact copy of backup {choice.backup_id}; nothing was restored:\n  "
        + "\n  ".join(group_problems(skipped))
        + "\n"
        + suggest_intact(choice.older, first=choice.kind.first)
    )


def suggest_intact(older: Sequence[Sequence[BackupCopy]], limit: int = 3, *, first: str = BASE_BACKUPS.first) -> str:
    """The newest older backup with a copy whose every object matches its manifest (checks a few)."""
    for copies in older[:limit]:
        for copy in copies:
            try:
                if not copy.catalog.verify(copy.manifest):
                    return (
                        f"The newest intact older backup is {copy.manifest.backup_id} (in {copy.target}): "
                        f"restore it with --backup {copy.manifest.backup_id}"
                    )
            except (StoreError, OSError):
                continue
    if not older:
        return f"There is no older backup to fall back to: {first}, and check the stores."
    return (
        f"None of the {min(limit, len(older))} next older backups has an intact copy either; check the stores "
        "and list the backups with `drflow backups list`."
    )


def copy_problem(exc: BaseException) -> str:
    """Why a copy cannot be used, in one short line (the store's full message is logged)."""
    log.info("copy unusable: %s", exc)
    if isinstance(exc, CorruptBackupError) and exc.key:
        name = exc.key.rsplit("/", 1)[-1]
        if exc.actual_sha256 is None:
            return f"object {name} is missing"
        return f"object {name} is corrupt (its sha256 does not match the manifest)"
    return str(exc).split("\n")[0]
