"""A full PostgreSQL backup into every target of a policy: the job behind the backup operator."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drflow.engines.postgres.basebackup import run_basebackup
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.standby import StandbySource, check_standby_source
from drflow.jobs.cluster_backup import take_shared
from drflow.jobs.request import PolicyBackupRequest
from drflow.jobs.validation import record_at_backup
from drflow.spec.clusters import ClusterShare
from drflow.store.factory import target_catalogs
from drflow.store.fanout import Fanout
from drflow.store.manifest import BackupManifest, SharedBackup
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
    standby: StandbySource | None = None
    cluster: ClusterShare | None = None
    """The components on this cluster sharing the policy: the backup of this id is taken once for all of them."""
    """Take the backup from this replica (`from:`), refused when it lags more than the RPO; ``conn`` is the primary."""


def take_full_backup(request: FullBackupRequest) -> BackupManifest:
    """Back up the primary into every target, each on its own; idempotent for one backup id.

    A retry returns the committed backup once every target holds it, and copies it into the targets
    an earlier try could not reach (see :mod:`drflow.store.fanout`); it never takes it again then.
    """
    catalogs = target_catalogs(request.spec_name, request.targets, lock=request.object_lock())
    fanout = Fanout.begin(catalogs, request.component, request.backup_id)
    recorded = fanout.recorded
    if recorded is not None and (recorded.shared is None or recorded.shared.holder == request.component):
        fanout.fill_missing(request.work_dir)
        return fanout.finish(recorded)
    fanout.require_target()
    if request.cluster is None:
        return _take(request, fanout, None)
    return take_shared(
        fanout,
        request.cluster,
        spec_name=request.spec_name,
        lock_conn=request.standby.conn if request.standby is not None else request.conn,
        timeout_s=request.timeout_s,
        take=lambda cluster: _take(request, fanout, cluster),
    )


def _take(request: FullBackupRequest, fanout: Fanout, cluster: str | None) -> BackupManifest:
    """pg_basebackup into every pending target; with ``cluster``, as the holder of a shared cluster backup."""
    source, extra = request.conn, {}
    if request.standby is not None:
        measured = check_standby_source(request.conn, request.standby, policy=request.policy)
        measured = {key: measured[key] for key in ("replica", "lag_s", "method")}
        log.info("backing up replica %s, %ss behind the primary (%s)", *measured.values())
        source, extra = request.standby.conn, {"from": request.standby.name, "standby_lag_s": measured["lag_s"]}

    with scratch_dir(request.work_dir, f"backup-{request.backup_id}") as staging_root:
        result = run_basebackup(
            source,
            staging_root / "data",
            bin_dir=request.bin_dir,
            compression=request.compression,
            label=f"drflow {request.spec_name}/{request.component} {request.backup_id}",
            max_rate=request.max_rate,
            timeout=request.timeout_s,
        )
        # Recorded right after the backup ends, to compare with in restore drills (see README: drills).
        # Read on the primary (the source of truth; a standby the backup came from may lag behind it).
        validation_values, baseline = record_at_backup(request.conn, request.validation, bin_dir=request.bin_dir)
        shared = None
        if cluster is not None and request.cluster is not None:
            shared = SharedBackup(
                cluster=cluster,
                holder=request.component,
                components=request.cluster.components,
                validation={
                    m.component: record_at_backup(
                        dataclasses.replace(request.conn, dbname=m.database), m.validation, bin_dir=request.bin_dir
                    )[0]
                    for m in request.cluster.members
                },
            )
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
        targets=[copy.name for copy in fanout.copies],
        shared=shared,
        extra={"pg_basebackup_seconds": round(result.duration_s, 3), **extra},
    )
    fanout.commit(manifest)
    return fanout.finish(manifest)
