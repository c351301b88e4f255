"""Logical backups (pg_dump) into every target of a policy, and restoring one table from them (from the first
intact copy, as every restore does)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.pgdump import (
    DUMP_SUFFIX,
    LogicalBackupError,
    TableRestore,
    dump_database,
    restore_table_from_dump,
)
from drflow.jobs.request import PolicyBackupRequest
from drflow.jobs.restore import BackupCopy, BackupKind, CopyChoice, first_intact
from drflow.store.catalog import Catalog
from drflow.store.factory import target_catalogs
from drflow.store.fanout import Fanout
from drflow.store.manifest import BackupManifest
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LogicalBackupRequest(PolicyBackupRequest):
    conn: PgConnInfo
    """The primary, connected to the component's database."""
    bin_dir: Path
    timeout: float | None = None


def dump_object_name(database: str) -> str:
    return f"{database}{DUMP_SUFFIX}"


def take_logical_backup(request: LogicalBackupRequest) -> BackupManifest:
    """``pg_dump -Fc`` of the component's database, stored (checksummed) in every target.

    Idempotent for one backup id, like the base backup: each target commits on its own, a retry
    copies a committed dump into the targets that miss it, and dumps again only when no target has it.
    """
    catalogs = target_catalogs(request.spec_name, request.targets, lock=request.object_lock())
    fanout = Fanout.begin(catalogs, request.component, request.backup_id)
    if (recorded := fanout.resume(request.work_dir)) is not None:
        return recorded

    name = dump_object_name(request.conn.dbname)
    with scratch_dir(request.work_dir, f"dump-{request.backup_id}") as staging:
        result = dump_database(
            request.conn,
            staging / name,
            bin_dir=request.bin_dir,
            compression=request.compression,
            validation=request.validation,
            timeout=request.timeout,
        )
        stored = fanout.put_objects({name: result.path})
    manifest = BackupManifest(
        backup_id=request.backup_id,
        spec=request.spec_name,
        component=request.component,
        policy=request.policy,
        backup_type="full",
        method="pg_dump",
        started_at=result.started_at,
        finished_at=result.finished_at,
        start_lsn=result.snapshot_lsn,
        end_lsn=result.snapshot_lsn,
        pg_version=result.server_version,
        system_identifier=result.system_identifier,
        database_size_bytes=result.database_size_bytes,
        compression=result.compression,
        objects=[stored[0]],
        retention_days=request.retention_days,
        retention_policy=request.retention_policy,
        expires_at=result.finished_at + timedelta(days=request.retention_days),
        validation_values=result.validation_values,
        targets=[target for target, _ in catalogs],
        extra={
            "database": request.conn.dbname,
            "format": "custom",
            "dump_object": name,
            "pg_dump_seconds": result.duration_s,
            "snapshot": "exported by drflow; start_lsn = end_lsn = the WAL position of the dump's snapshot",
        },
    )
    fanout.commit(manifest)
    return fanout.finish(manifest)


LOGICAL_DUMPS = BackupKind(
    accepts=lambda manifest: manifest.method == "pg_dump",
    noun="pg_dump backup",
    purpose="restore a table",
    listing="pg_dump backups",
    hints={"pg_basebackup": "restore it whole with `drflow restore`"},
    first="add a backup policy with method pg_dump and run it first",
)
"""What `drflow restore-table` restores from (:func:`~drflow.jobs.restore.find_copies` with ``kind=``)."""


def restore_table(
    catalog: Catalog,
    manifest: BackupManifest,
    table: str,
    target_conn: PgConnInfo,
    *,
    bin_dir: Path,
    schema: str = "public",
    replace: bool = False,
    work_dir: str | None = None,
    timeout: float | None = None,
) -> TableRestore:
    """Restore one table of a pg_dump backup into ``target_conn``'s database, touching nothing else.

    The dump is fetched and its sha256 checked before anything is changed; see
    :func:`~drflow.engines.postgres.pgdump.restore_table_from_dump` for what is refused.
    """
    if manifest.method != "pg_dump":
        raise LogicalBackupError(
            f"backup {manifest.backup_id} was taken with {manifest.method}; one table can be restored only from a "
            "pg_dump backup: pick one with --backup (see `drflow backups list`)"
        )
    with scratch_dir(work_dir, f"restore-table-{manifest.backup_id}") as staging:
        files = catalog.fetch(manifest, staging)
        return _restore_from(files, manifest, table, target_conn, bin_dir, schema, replace, timeout)


def restore_table_from_copies(
    choice: CopyChoice,
    table: str,
    target_conn: PgConnInfo,
    *,
    bin_dir: Path,
    schema: str = "public",
    replace: bool = False,
    work_dir: str | None = None,
    timeout: float | None = None,
    say: Callable[[str], None] = log.warning,
) -> tuple[TableRestore, BackupCopy]:
    """:func:`restore_table` from the first intact copy of the chosen dump (``find_copies(…, kind=LOGICAL_DUMPS)``).

    A missing or corrupt copy is skipped (said through ``say``) before the database is touched; with no intact
    copy, NoIntactCopyError names each target's problem and changes nothing.
    """
    with scratch_dir(work_dir, f"restore-table-{choice.backup_id}") as staging:
        files, copy = first_intact(choice, lambda c: c.catalog.fetch(c.manifest, staging / c.target), say=say)
        result = _restore_from(files, copy.manifest, table, target_conn, bin_dir, schema, replace, timeout)
    return result, copy


def _restore_from(
    files: Mapping[str, Path],
    manifest: BackupManifest,
    table: str,
    target_conn: PgConnInfo,
    bin_dir: Path,
    schema: str,
    replace: bool,
    timeout: float | None,
) -> TableRestore:
    name = str(manifest.extra.get("dump_object") or manifest.objects[0].name)
    result = restore_table_from_dump(
        files[name], table, target_conn, bin_dir=bin_dir, schema=schema, replace=replace, timeout=timeout
    )
    log.info(
        "restored %s.%s (%d rows) from backup %s into %s in %.1fs",
        schema,
        table,
        result.rows,
        manifest.backup_id,
        target_conn.describe(),
        result.duration_s,
    )
    return result
