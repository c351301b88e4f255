"""Snapshot backups (EBS volumes or an RDS instance) recorded in every storage target; restores and drills.

A snapshot backup asks AWS to snapshot the source, tags each snapshot with drflow's metadata, copies it into
every ``copy_to`` region and waits for each copy; then the record (the snapshot ids per region, their state,
size and source) is stored as ``snapshots.json`` in every target, checksummed, and the manifest written last,
each target on its own (:mod:`drflow.store.fanout`). A retry of the same backup id finds its snapshots and
copies by their tags instead of taking new ones.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from drflow.engines.aws import ebs, rds
from drflow.engines.aws.clients import AwsSnapshotError, Waiting, open_client
from drflow.jobs.request import PolicyBackupRequest
from drflow.store.base import StoreError
from drflow.store.catalog import Catalog
from drflow.store.factory import target_catalogs
from drflow.store.fanout import Fanout
from drflow.store.manifest import BackupManifest
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)

RECORD_NAME = "snapshots.json"
GIB = 1024**3


@dataclass(frozen=True)
class SnapshotSource:
    """What is snapshotted, where, and where the copies go."""

    kind: Literal["ebs", "rds"]
    conn_id: str
    region: str
    copy_to: tuple[str, ...] = ()
    volume_id: str | None = None
    volume_tags: Mapping[str, str] = field(default_factory=dict)
    db_instance: str | None = None
    instance_class: str = "db.t3.micro"
    waiting: Waiting = Waiting()


class SnapshotFacts(Protocol):
    """What a plan knows of a snapshot source (``contracts.SnapshotRun`` has these)."""

    @property
    def kind(self) -> Literal["ebs", "rds"]: ...

    @property
    def conn_id(self) -> str: ...

    @property
    def region(self) -> str: ...

    @property
    def copy_to(self) -> tuple[str, ...]: ...

    @property
    def volume_id(self) -> str | None: ...

    @property
    def volume_tags(self) -> Mapping[str, str]: ...

    @property
    def db_instance(self) -> str | None: ...

    @property
    def instance_class(self) -> str: ...

    @property
    def poll_s(self) -> float: ...

    @property
    def timeout_s(self) -> float: ...


def source_from(facts: SnapshotFacts) -> SnapshotSource:
    return SnapshotSource(
        kind=facts.kind,
        conn_id=facts.conn_id,
        region=facts.region,
        copy_to=facts.copy_to,
        volume_id=facts.volume_id,
        volume_tags=dict(facts.volume_tags),
        db_instance=facts.db_instance,
        instance_class=facts.instance_class,
        waiting=Waiting(poll_s=facts.poll_s, timeout_s=facts.timeout_s),
    )


@dataclass(frozen=True, kw_only=True)
class SnapshotBackupRequest(PolicyBackupRequest):
    source: SnapshotSource


def drflow_tags(request: SnapshotBackupRequest) -> dict[str, str]:
    """The metadata every snapshot and copy carries (also how a retry finds them)."""
    return {
        ebs.BACKUP_TAG: request.backup_id,
        "drflow:spec": request.spec_name,
        "drflow:component": request.component,
        "drflow:policy": request.policy,
        "drflow:retention-days": str(request.retention_days),
        "drflow:managed": "true",
    }


def take_snapshot_backup(request: SnapshotBackupRequest) -> BackupManifest:
    """Snapshot the source, copy every snapshot to the copy_to regions, record it in every target."""
    catalogs = target_catalogs(request.spec_name, request.targets)
    fanout = Fanout.begin(catalogs, request.component, request.backup_id)
    if (recorded := fanout.resume(request.work_dir)) is not None:
        return recorded
    started = datetime.now(UTC)
    source = request.source
    taken = _take_ebs(request) if source.kind == "ebs" else _take_rds(request)
    finished = datetime.now(UTC)
    record = {
        "kind": source.kind,
        "source_region": source.region,
        "regions": [source.region, *source.copy_to],
        "snapshots": taken,
    }
    with scratch_dir(request.work_dir, f"snapshot-{request.backup_id}") as staging:
        path = staging / RECORD_NAME
        path.write_text(json.dumps(record, indent=2, sort_keys=True))
        stored = fanout.put_objects({RECORD_NAME: path})
    manifest = BackupManifest(
        backup_id=request.backup_id,
        spec=request.spec_name,
        component=request.component,
        policy=request.policy,
        backup_type="snapshot",
        method="snapshot",
        started_at=started,
        finished_at=finished,
        database_size_bytes=sum(int(s["size_gib"]) * GIB for s in taken),
        objects=stored,
        retention_days=request.retention_days,
        retention_policy=request.retention_policy,
        expires_at=finished + timedelta(days=request.retention_days),
        targets=[target for target, _ in catalogs],
        extra=record,
    )
    fanout.commit(manifest)
    return fanout.finish(manifest)


def _copy(snapshot_id: str, state: str, **more: Any) -> dict[str, Any]:
    return {"snapshot_id": snapshot_id, "state": state, **more}


def _take_ebs(request: SnapshotBackupRequest) -> list[dict[str, Any]]:
    source, tags = request.source, drflow_tags(request)
    ec2 = open_client("ec2", source.conn_id, source.region)
    volumes = ebs.find_volumes(ec2, volume_id=source.volume_id, tags=source.volume_tags)
    taken = []
    for volume in volumes:
        volume_id = str(volume["VolumeId"])
        description = f"drflow {request.spec_name}/{request.component} backup {request.backup_id} of {volume_id}"
        snap = ebs.snapshot_volume(ec2, volume_id, tags=tags, description=description, waiting=source.waiting)
        regions = {source.region: _copy(snap["SnapshotId"], snap["State"], start_time=_iso(snap.get("StartTime")))}
        for region in source.copy_to:
            dest = open_client("ec2", source.conn_id, region)
            copy = ebs.copy_snapshot(
                dest,
                source_region=source.region,
                snapshot_id=snap["SnapshotId"],
                tags=tags,
                description=description,
                waiting=source.waiting,
            )
            regions[region] = _copy(copy["SnapshotId"], copy["State"], start_time=_iso(copy.get("StartTime")))
        taken.append(
            {
                "source": volume_id,
                "size_gib": int(volume.get("Size") or snap.get("VolumeSize") or 0),
                "availability_zone": volume.get("AvailabilityZone"),
                "volume_type": volume.get("VolumeType"),
                "regions": regions,
            }
        )
    return taken


def _take_rds(request: SnapshotBackupRequest) -> list[dict[str, Any]]:
    source, tags = request.source, drflow_tags(request)
    assert source.db_instance is not None, "the spec model requires rds.db_instance"
    client = open_client("rds", source.conn_id, source.region)
    snapshot_id = rds.rds_identifier("drflow", request.spec_name, request.component, request.backup_id)
    snap = rds.snapshot_instance(
        client, db_instance=source.db_instance, snapshot_id=snapshot_id, tags=tags, waiting=source.waiting
    )
    regions = {source.region: _copy(snapshot_id, snap["Status"], arn=snap.get("DBSnapshotArn"))}
    for region in source.copy_to:
        dest = open_client("rds", source.conn_id, region)
        copy = rds.copy_db_snapshot(
            dest,
            source_region=source.region,
            source_arn=str(snap["DBSnapshotArn"]),
            snapshot_id=snapshot_id,
            tags=tags,
            waiting=source.waiting,
        )
        regions[region] = _copy(snapshot_id, copy["Status"], arn=copy.get("DBSnapshotArn"))
    return [
        {
            "source": source.db_instance,
            "size_gib": int(snap.get("AllocatedStorage") or 0),
            "engine": snap.get("Engine"),
            "engine_version": snap.get("EngineVersion"),
            "regions": regions,
        }
    ]


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


@dataclass(frozen=True)
class Restored:
    """A volume or DB instance created from a snapshot backup."""

    kind: Literal["ebs", "rds"]
    region: str
    resource_id: str
    snapshot_id: str
    source: str
    state: str
    seconds: float


def restore_snapshot(
    manifest: BackupManifest,
    source: SnapshotSource,
    *,
    region: str,
    zone: str | None = None,
    name: str | None = None,
    on_created: Callable[[str], None] = lambda _: None,
) -> list[Restored]:
    """Create a volume (per snapshotted volume) or a DB instance from the backup's copy in ``region``.

    Waits until each is available. ``zone`` is the availability zone (default: the region + 'a' for volumes,
    AWS's choice for instances); ``name`` the new instance's identifier (RDS). ``on_created`` is told each
    new volume or instance id as soon as AWS has it, before the wait.
    """
    if manifest.backup_type != "snapshot":
        raise AwsSnapshotError(
            f"backup {manifest.backup_id} is a {manifest.method} backup, not a snapshot; pick a snapshot backup "
            "(see `drflow backups list`)"
        )
    snapshots: Sequence[Mapping[str, Any]] = manifest.extra.get("snapshots") or []
    have = sorted({r for s in snapshots for r in s.get("regions", {})})
    if region not in have:
        raise AwsSnapshotError(
            f"backup {manifest.backup_id} has no snapshot copy in region {region}; its copies are in "
            f"{', '.join(have) or 'no region'}: choose one of them"
        )
    kind = str(manifest.extra.get("kind"))
    tags = {"drflow:restored-from": manifest.backup_id, "drflow:component": manifest.component}
    created = []
    for snap in snapshots:
        snapshot_id = str(snap["regions"][region]["snapshot_id"])
        began = time.monotonic()
        if kind == "ebs":
            ec2 = open_client("ec2", source.conn_id, region)
            volume = ebs.create_volume(
                ec2,
                snapshot_id=snapshot_id,
                zone=zone or f"{region}a",
                tags=tags,
                waiting=source.waiting,
                on_created=on_created,
            )
            resource_id, state = str(volume["VolumeId"]), str(volume["State"])
        else:
            client = open_client("rds", source.conn_id, region)
            resource_id = name or rds.rds_identifier(str(snap["source"]), "restored", manifest.backup_id[:16])
            instance = rds.restore_instance(
                client,
                snapshot_id=snapshot_id,
                instance_id=resource_id,
                instance_class=source.instance_class,
                zone=zone,
                tags=tags,
                waiting=source.waiting,
                on_created=on_created,
            )
            state = str(instance["DBInstanceStatus"])
        created.append(
            Restored(
                kind="ebs" if kind == "ebs" else "rds",
                region=region,
                resource_id=resource_id,
                snapshot_id=snapshot_id,
                source=str(snap["source"]),
                state=state,
                seconds=round(time.monotonic() - began, 3),
            )
        )
    return created


def snapshot_drill(
    manifest: BackupManifest, source: SnapshotSource, *, region: str, zone: str | None = None
) -> dict[str, Any]:
    """Restore the backup in ``region``, check every resource is available, then delete what was created.

    Whatever the drill created is deleted, also when a create or a wait failed half-way.
    """
    started_at = datetime.now(UTC)
    began = time.monotonic()
    kind = str(manifest.extra.get("kind"))
    name = rds.rds_identifier("drflow-drill", manifest.component, manifest.backup_id[:16])
    created_ids: list[str] = []
    try:
        created = restore_snapshot(manifest, source, region=region, zone=zone, name=name, on_created=created_ids.append)
        restore_s = time.monotonic() - began
        unavailable = [r for r in created if r.state != "available"]
        if unavailable:
            raise AwsSnapshotError(
                f"drill of backup {manifest.backup_id}: {', '.join(r.resource_id for r in unavailable)} not available "
                "after the wait; look at them in the AWS console"
            )
    finally:
        for resource_id in created_ids:
            if kind == "ebs":
                ebs.delete_volume(open_client("ec2", source.conn_id, region), resource_id, source.waiting)
            else:
                rds.delete_instance(open_client("rds", source.conn_id, region), resource_id, source.waiting)
    return {
        "backup_id": manifest.backup_id,
        "region": region,
        "restored": [r.__dict__ for r in created],
        "restore_s": round(restore_s, 3),
        "total_s": round(time.monotonic() - began, 3),
        "backup_finished_at": manifest.finished_at.isoformat(),
        # The recovery point a restore at this moment would have: the snapshot's age when the drill began.
        "backup_age_s": round((started_at - manifest.finished_at).total_seconds(), 3),
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "passed": True,
    }


def latest_snapshot_backup(
    spec_name: str,
    component: str,
    policy: str | None,
    targets: Sequence[Mapping[str, Any]],
    backup_id: str | None = None,
) -> tuple[Catalog, BackupManifest]:
    """The requested (or newest) snapshot backup, from the first target that can be read."""
    problems = []
    for name, catalog in target_catalogs(spec_name, targets):
        try:
            found = [
                m
                for m in catalog.list_backups(component)
                if m.backup_type == "snapshot" and policy in (None, m.policy) and backup_id in (None, m.backup_id)
            ]
        except StoreError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if found:
            return catalog, found[-1]
        problems.append(f"{name}: no snapshot backup{f' {backup_id}' if backup_id else ''} of {component}")
    raise AwsSnapshotError(
        "no snapshot backup to restore: " + "; ".join(problems) + ". Run the snapshot backup DAG first, or pick "
        "a backup id that `drflow backups list` shows"
    )
