"""Logical backups (pg_dump) into every target of a policy, and restoring one table from them."""

from __future__ import annotations

import logging
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
    name = str(manifest.extra.get("dump_object") or manifest.objects[0].name)
    with scratch_dir(work_dir, f"restore-table-{manifest.backup_id}") as staging:
        files = catalog.fetch(manifest, staging)
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


def latest_logical_backup(catalog: Catalog, component: str, backup_id: str | None = None) -> BackupManifest:
    """The requested backup, or the newest pg_dump backup of the component.

    Messages leave the store out (callers name the target), so targets that say the same thing can
    be reported on one line; hints name only pg_dump backups, the ones restore-table can use.
    """
    dumps = [m for m in catalog.list_backups(component) if m.method == "pg_dump"]
    if backup_id:
        found = next((m for m in catalog.list_backups(component) if m.backup_id == backup_id), None)
        if found is not None and found.method == "pg_dump":
            return found
        why = f"it is a {found.method} backup" if found is not None else "there is no such backup"
        known = ", ".join(m.backup_id for m in reversed(dumps[-5:])) or "none"
        raise LogicalBackupError(
            f"backup {backup_id!r} of component {component!r} cannot restore a table: {why}; "
            f"pg_dump backups, newest first: {known}"
        )
    if not dumps:
        raise LogicalBackupError(
            f"no pg_dump backup of component {component!r}; add a backup policy with method pg_dump and run it first"
        )
    return dumps[-1]
