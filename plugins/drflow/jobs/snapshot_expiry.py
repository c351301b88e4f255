"""Retention of snapshot entries: their AWS snapshots deleted in every region, before the catalog record.

A snapshot entry's data is its AWS snapshots (one per snapshotted volume or instance, in the source
region and every ``copy_to`` region), shared by the records of every storage target. So:

- the snapshots go only when every readable target holding the record dooms it (a target that keeps
  the entry — pinned, locked, among the ``min_copies`` newest there — keeps the snapshots, and the other
  targets keep their record too, saying why); the verdicts themselves are the catalog's
  (:func:`drflow.store.expiry.decide`), so pins, locks and ``min_copies`` hold exactly as for any entry;
- every region on its own: a region that fails is reported and never stops the others;
- a snapshot is deleted only when it carries ``drflow:backup-id`` of the entry (else refused, reported);
  one already gone counts as deleted;
- the catalog records go (manifest first, then ``snapshots.json``) only once every snapshot of the entry
  is gone; otherwise they stay, so a rerun finds what is left.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drflow.engines.aws import ebs, rds
from drflow.engines.aws.clients import AwsSnapshotError, open_client
from drflow.store.manifest import BackupManifest

log = logging.getLogger(__name__)


def is_snapshot_entry(manifest: BackupManifest) -> bool:
    return manifest.backup_type == "snapshot" and manifest.method == "snapshot"


def snapshot_ids(manifest: BackupManifest) -> dict[str, list[str]]:
    """``{region: [snapshot id, …]}`` of a snapshot entry, from its record (source region first)."""
    regions: dict[str, list[str]] = {}
    for snap in manifest.extra.get("snapshots") or []:
        for region, copy in (snap.get("regions") or {}).items():
            regions.setdefault(str(region), []).append(str(copy["snapshot_id"]))
    order = [str(r) for r in manifest.extra.get("regions") or []]
    return dict(sorted(regions.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0])))


@dataclass
class SnapshotDeletion:
    """What happened to one entry's AWS snapshots, per region."""

    backup_id: str
    regions: dict[str, list[str]]
    deleted: dict[str, list[str]] = field(default_factory=dict)
    already_gone: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "regions": self.regions,
            "deleted": self.deleted,
            "already_gone": self.already_gone,
            "errors": self.errors,
        }


def delete_entry_snapshots(manifest: BackupManifest, conn_id: str | None) -> SnapshotDeletion:
    """Delete every AWS snapshot of the entry, each region on its own; errors by region, never raised."""
    result = SnapshotDeletion(manifest.backup_id, snapshot_ids(manifest))
    kind = str(manifest.extra.get("kind"))
    if conn_id is None:
        for region in result.regions:
            result.errors[region] = (
                f"the spec has no `snapshots` source for {manifest.component} any more, so drflow has no AWS "
                "connection to delete the snapshots with; put the source (its conn_id) back, or delete the "
                "snapshots by hand and then run expire again"
            )
        return result
    if kind not in ("ebs", "rds"):
        for region in result.regions:
            result.errors[region] = f"the record's kind {kind!r} is neither ebs nor rds; delete the snapshots by hand"
        return result
    from botocore.exceptions import BotoCoreError, ClientError

    delete = ebs.delete_backup_snapshot if kind == "ebs" else rds.delete_backup_snapshot
    for region, ids in result.regions.items():
        try:
            client = open_client("ec2" if kind == "ebs" else "rds", conn_id, region)
            for snapshot_id in ids:
                gone = delete(client, snapshot_id, manifest.backup_id)
                (result.deleted if gone else result.already_gone).setdefault(region, []).append(snapshot_id)
        except (AwsSnapshotError, LookupError) as exc:  # LookupError: the connection is not defined
            result.errors[region] = str(exc)
        except (BotoCoreError, ClientError) as exc:  # unreachable endpoint, bad credentials: this region only
            result.errors[region] = (
                f"cannot reach {kind.upper()} in {region}: {exc}; check the connection {conn_id} and the "
                "region, then run expire again"
            )
        if region in result.errors:
            log.warning("snapshots of %s in %s not deleted: %s", manifest.backup_id, region, result.errors[region])
    return result


def describe_regions(regions: Mapping[str, list[str]]) -> str:
    """``us-east-1 snap-1, snap-2; us-west-2 snap-3``."""
    return "; ".join(f"{region} {', '.join(ids)}" for region, ids in regions.items()) or "no snapshot recorded"
