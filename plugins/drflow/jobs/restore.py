"""Restore a backup from the catalog into a data directory; shared by `drflow restore` and the operators.

Works from the store alone: the Airflow metadata database may be lost in the same disaster.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from drflow.engines.postgres.cluster import LocalCluster, free_port
from drflow.engines.postgres.restore import lay_out_backup, start_restored
from drflow.hosts import Host
from drflow.store.catalog import BackupManifest, Catalog
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)


class NoBackupError(LookupError):
    pass


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


def choose_backup(
    catalog: Catalog, component: str, backup_id: str | None = None, policy: str | None = None
) -> BackupManifest:
    """The requested backup, or the newest complete one (of a policy, when given)."""
    if backup_id:
        try:
            manifest = catalog.get(component, backup_id)
        except LookupError as exc:
            known = [m.backup_id for m in catalog.list_backups(component)][-5:]
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
    fulls = [
        m
        for m in catalog.list_backups(component)
        if m.method == PHYSICAL_FULL_METHOD and m.backup_type == "full" and policy in (None, m.policy)
    ]
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
) -> RestoreResult:
    """Download and verify every object, then lay the backup out in target_dir and run pg_verifybackup.

    Nothing is written to target_dir before every object's checksum matched, so a corrupt backup
    changes nothing.
    """
    with scratch_dir(work_dir, f"restore-{manifest.backup_id}") as staging:
        started = time.monotonic()
        files = catalog.fetch(manifest, staging / "objects")
        fetched = time.monotonic()
        lay_out_backup(files, target_dir, host=host, bin_dir=bin_dir, backup_id=manifest.backup_id)
        laid_out = time.monotonic()
    log.info(
        "restored %s into %s (fetch %.1fs, lay out and verify %.1fs)",
        manifest.backup_id,
        target_dir,
        fetched - started,
        laid_out - fetched,
    )
    return RestoreResult(manifest, target_dir, fetched - started, laid_out - fetched)


def start_scratch_instance(data_dir: Path, *, host: Host, bin_dir: Path, timeout: float = 300) -> LocalCluster:
    """Start a restored data directory on a free loopback port (drills, `drflow restore --start`)."""
    socket_dir = data_dir.parent / "socket"
    host.make_private_dir(socket_dir)
    return start_restored(
        data_dir, port=free_port(), socket_dir=socket_dir, bin_dir=bin_dir, host=host, timeout=timeout
    )
