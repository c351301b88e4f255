"""A full PostgreSQL backup into every target of a policy: the job behind the backup operator."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from drflow.engines.postgres.basebackup import run_basebackup
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.queries import run_validation_queries
from drflow.store.catalog import BackupManifest, Catalog, StoredObject
from drflow.store.factory import open_store
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FullBackupRequest:
    spec_name: str
    component: str
    policy: str
    backup_id: str
    conn: PgConnInfo
    bin_dir: Path
    targets: Sequence[Mapping[str, Any]]
    compression: str
    retention_days: int
    retention_policy: Literal["standard", "compliance", "governance"]
    validation: Sequence[Mapping[str, Any]]
    work_dir: str | None = None
    max_rate: str | None = None
    """Throttle of pg_basebackup (its --max-rate), e.g. 32M; None streams at full speed."""
    timeout_s: float | None = None
    """Stop pg_basebackup after this long (the policy's timeout); None: the runner's default."""


def target_catalogs(spec_name: str, targets: Sequence[Mapping[str, Any]]) -> list[tuple[str, Catalog]]:
    return [(str(target["name"]), Catalog(open_store(target), spec_name)) for target in targets]


def begin_in_every_target(
    catalogs: Sequence[tuple[str, Catalog]], component: str, backup_id: str
) -> BackupManifest | None:
    """Start (or resume) one backup id in every target.

    Returns the recorded manifest when the backup is already complete everywhere: a retry of a
    finished backup. Otherwise returns None after discarding whatever an earlier try left, a manifest
    committed in some targets only included, so the caller takes the backup again from scratch and no
    target ever holds a half entry or two entries for one run.
    """
    existing = [catalog.begin(component, backup_id) for _, catalog in catalogs]
    if existing and all(manifest is not None for manifest in existing):
        log.info("backup %s is already complete in every target; nothing to do", backup_id)
        return existing[0]
    for (_, catalog), manifest in zip(catalogs, existing, strict=True):
        if manifest is not None:
            catalog.discard(component, backup_id)
    return None


def take_full_backup(request: FullBackupRequest) -> BackupManifest:
    """Back up the primary into every target; idempotent for one backup id (see begin_in_every_target)."""
    catalogs = target_catalogs(request.spec_name, request.targets)
    done = begin_in_every_target(catalogs, request.component, request.backup_id)
    if done is not None:
        return done

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
        validation_values = run_validation_queries(request.conn, request.validation)

        objects_per_target: list[list[StoredObject]] = []
        for name, catalog in catalogs:
            log.info("uploading %d objects to %s (%s)", len(result.files), name, catalog.store.describe())
            objects_per_target.append(
                [
                    catalog.put_object(request.component, request.backup_id, object_name, path)
                    for object_name, path in sorted(result.files.items())
                ]
            )

    finished = datetime.now(UTC)
    objects = objects_per_target[0]
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
        targets=[name for name, _ in catalogs],
        extra={"pg_basebackup_seconds": round(result.duration_s, 3)},
    )
    for _, catalog in catalogs:
        catalog.commit(manifest)
    return manifest
