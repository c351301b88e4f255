"""A full PostgreSQL backup into every target of a policy: the job behind the backup operator."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drflow.engines.postgres.basebackup import run_basebackup
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.jobs.request import PolicyBackupRequest
from drflow.jobs.validation import record_at_backup
from drflow.store.factory import target_catalogs
from drflow.store.fanout import Fanout
from drflow.store.manifest import BackupManifest
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class FullBackupRequest(PolicyBackupRequest):
    conn: PgConnInfo
    bin_dir: Path
    max_rate: str | None = None
    """Throttle of pg_basebackup (its --max-rate), e.g. 32M; None streams at full speed."""
    timeout_s: float | None = None
    """Stop pg_basebackup after this long (the policy's timeout); None: the runner's default."""


def take_full_backup(request: FullBackupRequest) -> BackupManifest:
    """Back up the primary into every target, each on its own; idempotent for one backup id.

    A retry returns the committed backup once every target holds it, and copies it into the targets
    an earlier try could not reach (see :mod:`drflow.store.fanout`); it never takes it again then.
    """
    catalogs = target_catalogs(request.spec_name, request.targets, lock=request.object_lock())
    fanout = Fanout.begin(catalogs, request.component, request.backup_id)
    if (recorded := fanout.recorded) is not None:
        fanout.fill_missing(request.work_dir)
        return fanout.finish(recorded)
    fanout.require_target()

    with scratch_dir(request.work_dir, f"backup-{request.backup_id}") as staging_root:
        result = run_basebackup(
            request.conn,
            staging_root / "data",
            bin_dir=request.bin_dir,
            compression=request.compression,
            label=f"drflow {request.spec_name}/{request.component} {request.backup_id}",
            max_rate=request.max_rate,
            timeout=request.timeout_s,
        )
        # Recorded right after the backup ends, to compare with in restore drills (see README: drills).
        validation_values, baseline = record_at_backup(request.conn, request.validation, bin_dir=request.bin_dir)
        objects = fanout.put_objects(result.files)

    finished = datetime.now(UTC)
    manifest = BackupManifest(
        backup_id=request.backup_id,
        spec=request.spec_name,
        component=request.component,
        policy=request.policy,
        backup_type="full",
        method="pg_basebackup",
        parent_id=None,
        started_at=result.started_at,
        finished_at=result.finished_at,
        duration_s=round((finished - result.started_at).total_seconds(), 3),
        start_lsn=result.start_lsn,
        end_lsn=result.end_lsn,
        timeline=result.timeline,
        pg_version=result.server_version,
        system_identifier=str(result.system_identifier),
        database_size_bytes=result.database_size_bytes,
        stored_bytes=sum(obj.size for obj in objects),
        compression=request.compression,
        objects=objects,
        retention_days=request.retention_days,
        retention_policy=request.retention_policy,
        expires_at=result.finished_at + timedelta(days=request.retention_days),
        validation_values=validation_values,
        validation_baseline=baseline,
        targets=[name for name, _ in catalogs],
        extra={"pg_basebackup_seconds": round(result.duration_s, 3)},
    )
    fanout.commit(manifest)
    return fanout.finish(manifest)
