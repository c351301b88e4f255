"""EBS volume snapshots: take (tagged, idempotent per backup id), copy to another region, restore to a volume."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from drflow.engines.aws.clients import AwsSnapshotError, Waiting, aws_error, tag_list, wait_for

log = logging.getLogger(__name__)

BACKUP_TAG = "drflow:backup-id"
SOURCE_TAG = "drflow:source-snapshot"


def find_volumes(ec2: Any, *, volume_id: str | None, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """The volume named by id, or every volume carrying all ``tags``; AwsSnapshotError when there is none."""
    from botocore.exceptions import ClientError

    try:
        if volume_id:
            volumes = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
        else:
            filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items())]
            volumes = [
                v for page in ec2.get_paginator("describe_volumes").paginate(Filters=filters) for v in page["Volumes"]
            ]
    except ClientError as exc:
        raise aws_error(f"finding EBS volume {volume_id or dict(tags)}", exc) from None
    if not volumes:
        wanted = f"volume {volume_id}" if volume_id else f"a volume tagged {dict(tags)}"
        raise AwsSnapshotError(
            f"no EBS {wanted} in {ec2.meta.region_name}; check snapshots.ebs and snapshots.region in the spec "
            "(and the volume's tags), then retry"
        )
    return sorted(volumes, key=lambda v: str(v["VolumeId"]))


def _snapshots(ec2: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(ec2.describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"])


def snapshot_volume(
    ec2: Any, volume_id: str, *, tags: Mapping[str, str], description: str, waiting: Waiting
) -> dict[str, Any]:
    """Snapshot the volume (or find this backup's snapshot of it, on a retry) and wait until it is completed."""
    from botocore.exceptions import ClientError

    found = _snapshots(
        ec2,
        [{"Name": "volume-id", "Values": [volume_id]}, {"Name": f"tag:{BACKUP_TAG}", "Values": [tags[BACKUP_TAG]]}],
    )
    try:
        if found:
            snapshot_id = found[0]["SnapshotId"]
            log.info("snapshot %s of %s exists from an earlier try", snapshot_id, volume_id)
        else:
            snapshot_id = ec2.create_snapshot(
                VolumeId=volume_id,
                Description=description,
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(dict(tags))}],
            )["SnapshotId"]
            log.info("snapshot %s of %s started", snapshot_id, volume_id)
    except ClientError as exc:
        raise aws_error(f"snapshotting EBS volume {volume_id}", exc) from None
    return _wait_completed(ec2, snapshot_id, f"snapshot {snapshot_id} of {volume_id}", waiting)


def copy_snapshot(
    dest: Any, *, source_region: str, snapshot_id: str, tags: Mapping[str, str], description: str, waiting: Waiting
) -> dict[str, Any]:
    """Copy a completed snapshot into ``dest``'s region (or find the copy, on a retry) and wait for it."""
    from botocore.exceptions import ClientError

    region = dest.meta.region_name
    found = _snapshots(dest, [{"Name": f"tag:{SOURCE_TAG}", "Values": [f"{source_region}/{snapshot_id}"]}])
    try:
        if found:
            copy_id = found[0]["SnapshotId"]
        else:
            copy_id = dest.copy_snapshot(
                SourceRegion=source_region, SourceSnapshotId=snapshot_id, Description=description
            )["SnapshotId"]
            # Tagged after the copy, so it works where copy_snapshot takes no TagSpecifications.
            dest.create_tags(Resources=[copy_id], Tags=tag_list({**tags, SOURCE_TAG: f"{source_region}/{snapshot_id}"}))
            log.info("copy %s of snapshot %s into %s started", copy_id, snapshot_id, region)
    except ClientError as exc:
        raise aws_error(f"copying snapshot {snapshot_id} from {source_region} to {region}", exc) from None
    return _wait_completed(dest, copy_id, f"copy {copy_id} in {region} of snapshot {snapshot_id}", waiting)


def _wait_completed(ec2: Any, snapshot_id: str, what: str, waiting: Waiting) -> dict[str, Any]:
    wait_for(ec2, "snapshot_completed", what, waiting, SnapshotIds=[snapshot_id])
    snapshot: dict[str, Any] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    return snapshot


def create_volume(
    ec2: Any,
    *,
    snapshot_id: str,
    zone: str,
    tags: Mapping[str, str],
    waiting: Waiting,
    on_created: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """A new volume from the snapshot in availability zone ``zone``, once it is available.

    ``on_created`` is told the volume id as soon as AWS has it, before the wait (so a caller can remove it).
    """
    from botocore.exceptions import ClientError

    try:
        volume_id = ec2.create_volume(
            SnapshotId=snapshot_id,
            AvailabilityZone=zone,
            TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list(dict(tags))}],
        )["VolumeId"]
    except ClientError as exc:
        raise aws_error(f"creating a volume from snapshot {snapshot_id} in {zone}", exc) from None
    on_created(volume_id)
    wait_for(ec2, "volume_available", f"volume {volume_id} from snapshot {snapshot_id}", waiting, VolumeIds=[volume_id])
    volume: dict[str, Any] = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    return volume


def delete_volume(ec2: Any, volume_id: str, waiting: Waiting) -> None:
    from botocore.exceptions import ClientError

    try:
        ec2.delete_volume(VolumeId=volume_id)
    except ClientError as exc:
        raise aws_error(f"deleting drill volume {volume_id} (delete it by hand)", exc) from None
    wait_for(ec2, "volume_deleted", f"deletion of drill volume {volume_id}", waiting, VolumeIds=[volume_id])


def delete_backup_snapshot(ec2: Any, snapshot_id: str, backup_id: str) -> bool:
    """Delete a snapshot of backup ``backup_id``; False when it is already gone.

    Refused (AwsSnapshotError) when the snapshot does not carry ``drflow:backup-id = backup_id``: retention
    deletes only what drflow took for that backup.
    """
    from botocore.exceptions import ClientError

    region = ec2.meta.region_name
    try:
        found = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    except ClientError as exc:
        if _not_found(exc):
            return False
        raise aws_error(f"looking up snapshot {snapshot_id} in {region}", exc) from None
    if not found:
        return False
    tags = {t["Key"]: t["Value"] for t in found[0].get("Tags") or []}
    if tags.get(BACKUP_TAG) != backup_id:
        raise AwsSnapshotError(
            f"snapshot {snapshot_id} in {region} is tagged {BACKUP_TAG}={tags.get(BACKUP_TAG)!r}, not {backup_id!r}: "
            "retention deletes only the snapshots drflow took for the entry; check the catalog record and delete it "
            "by hand if it is really this backup's"
        )
    try:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    except ClientError as exc:
        if _not_found(exc):
            return False
        raise aws_error(f"deleting snapshot {snapshot_id} in {region}", exc) from None
    log.info("deleted snapshot %s of backup %s in %s", snapshot_id, backup_id, region)
    return True


def _not_found(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in {"InvalidSnapshot.NotFound", "InvalidSnapshotID.NotFound"}
