"""RDS DB snapshots: take (tagged, idempotent per backup id), copy to another region, restore to an instance."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from drflow.engines.aws.clients import AwsSnapshotError, Waiting, aws_error, tag_list, wait_for
from drflow.engines.aws.ebs import BACKUP_TAG

log = logging.getLogger(__name__)


def rds_identifier(*parts: str) -> str:
    """An RDS identifier from parts: lower-case letters, digits and single hyphens, starting with a letter."""
    text = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    text = text if text[:1].isalpha() else f"d-{text}"
    return text[:255].rstrip("-")


def _existing(rds: Any, snapshot_id: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        found = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "DBSnapshotNotFound":
            return None
        raise aws_error(f"looking up DB snapshot {snapshot_id}", exc) from None
    return dict(found[0]) if found else None


def snapshot_instance(
    rds: Any, *, db_instance: str, snapshot_id: str, tags: Mapping[str, str], waiting: Waiting
) -> dict[str, Any]:
    """A DB snapshot of the instance named ``snapshot_id`` (taken, or found on a retry), once available."""
    from botocore.exceptions import ClientError

    if _existing(rds, snapshot_id) is None:
        try:
            rds.create_db_snapshot(
                DBSnapshotIdentifier=snapshot_id, DBInstanceIdentifier=db_instance, Tags=tag_list(dict(tags))
            )
        except ClientError as exc:
            raise aws_error(f"snapshotting RDS instance {db_instance}", exc) from None
        log.info("DB snapshot %s of %s started", snapshot_id, db_instance)
    return _wait_available(rds, snapshot_id, f"DB snapshot {snapshot_id} of {db_instance}", waiting)


def copy_db_snapshot(
    dest: Any, *, source_region: str, source_arn: str, snapshot_id: str, tags: Mapping[str, str], waiting: Waiting
) -> dict[str, Any]:
    """Copy a DB snapshot into ``dest``'s region under the same identifier (or find the copy), once available."""
    from botocore.exceptions import ClientError

    region = dest.meta.region_name
    if _existing(dest, snapshot_id) is None:
        try:
            dest.copy_db_snapshot(
                SourceDBSnapshotIdentifier=source_arn,
                TargetDBSnapshotIdentifier=snapshot_id,
                SourceRegion=source_region,
                Tags=tag_list(dict(tags)),
            )
        except ClientError as exc:
            raise aws_error(f"copying DB snapshot {source_arn} to {region}", exc) from None
        log.info("copy of DB snapshot %s into %s started", snapshot_id, region)
    return _wait_available(dest, snapshot_id, f"copy in {region} of DB snapshot {snapshot_id}", waiting)


def _wait_available(rds: Any, snapshot_id: str, what: str, waiting: Waiting) -> dict[str, Any]:
    wait_for(rds, "db_snapshot_available", what, waiting, DBSnapshotIdentifier=snapshot_id)
    found = _existing(rds, snapshot_id)
    assert found is not None, "the waiter saw it available"
    return found


def restore_instance(
    rds: Any,
    *,
    snapshot_id: str,
    instance_id: str,
    instance_class: str,
    zone: str | None,
    tags: Mapping[str, str],
    waiting: Waiting,
    on_created: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """A new DB instance from the snapshot, once it is available (``on_created``: told before the wait)."""
    from botocore.exceptions import ClientError

    args: dict[str, Any] = {
        "DBInstanceIdentifier": instance_id,
        "DBSnapshotIdentifier": snapshot_id,
        "DBInstanceClass": instance_class,
        "Tags": tag_list(dict(tags)),
    }
    if zone:
        args["AvailabilityZone"] = zone
    try:
        rds.restore_db_instance_from_db_snapshot(**args)
    except ClientError as exc:
        raise aws_error(f"restoring DB instance {instance_id} from snapshot {snapshot_id}", exc) from None
    on_created(instance_id)
    what = f"DB instance {instance_id} from snapshot {snapshot_id}"
    wait_for(rds, "db_instance_available", what, waiting, DBInstanceIdentifier=instance_id)
    instance: dict[str, Any] = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
    return instance


def delete_instance(rds: Any, instance_id: str, waiting: Waiting) -> None:
    from botocore.exceptions import ClientError

    try:
        rds.delete_db_instance(DBInstanceIdentifier=instance_id, SkipFinalSnapshot=True)
    except ClientError as exc:
        raise aws_error(f"deleting drill DB instance {instance_id} (delete it by hand)", exc) from None
    wait_for(
        rds,
        "db_instance_deleted",
        f"deletion of drill instance {instance_id}",
        waiting,
        DBInstanceIdentifier=instance_id,
    )


def delete_backup_snapshot(rds: Any, snapshot_id: str, backup_id: str) -> bool:
    """Delete DB snapshot ``snapshot_id`` of backup ``backup_id``; False when it is already gone.

    Refused (AwsSnapshotError) when the snapshot does not carry ``drflow:backup-id = backup_id``.
    """
    from botocore.exceptions import ClientError

    region = rds.meta.region_name
    found = _existing(rds, snapshot_id)
    if found is None:
        return False
    try:
        listed = rds.list_tags_for_resource(ResourceName=found["DBSnapshotArn"])["TagList"]
    except ClientError as exc:
        raise aws_error(f"reading the tags of DB snapshot {snapshot_id} in {region}", exc) from None
    tags = {t["Key"]: t["Value"] for t in listed}
    if tags.get(BACKUP_TAG) != backup_id:
        raise AwsSnapshotError(
            f"DB snapshot {snapshot_id} in {region} is tagged {BACKUP_TAG}={tags.get(BACKUP_TAG)!r}, not "
            f"{backup_id!r}: retention deletes only the snapshots drflow took for the entry; check the catalog "
            "record and delete it by hand if it is really this backup's"
        )
    try:
        rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "DBSnapshotNotFound":
            return False
        raise aws_error(f"deleting DB snapshot {snapshot_id} in {region}", exc) from None
    log.info("deleted DB snapshot %s of backup %s in %s", snapshot_id, backup_id, region)
    return True
