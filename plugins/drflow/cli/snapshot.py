"""`drflow restore` of a snapshot source: volumes (or an RDS instance) from a snapshot backup, without Airflow."""

from __future__ import annotations

from typing import Any

from drflow.cli.common import fail, out
from drflow.units import human_duration


def restore_snapshot_backup(
    spec: Any, component: Any, region: str, zone: str | None, backup: str | None, targets: list[dict[str, Any]]
) -> None:
    """Create the volume(s) or DB instance from the backup's copy in ``region`` and wait until available."""
    from drflow.engines.aws.clients import AwsSnapshotError
    from drflow.jobs.snapshot import latest_snapshot_backup, restore_snapshot, source_from
    from drflow.plan.snapshot import snapshot_run

    if "/" in region or not region.strip():
        raise fail(
            f"--to {region!r}: for the snapshot source of {component.name!r}, --to names the AWS region to create "
            "the volume or instance in, e.g. --to us-west-2 (--zone picks the availability zone); nothing was changed"
        )
    policies = [p for p in component.backup_policies if p.method == "snapshot"]
    if not policies:
        raise fail(f"component {component.name!r} has no snapshot backup policy; add one (preset: system-image)")
    run = snapshot_run(spec, component, policies[0])
    try:
        _, manifest = latest_snapshot_backup(spec.metadata.name, component.name, None, targets, backup)
        created = restore_snapshot(manifest, source_from(run), region=region, zone=zone)
    except Exception as exc:  # every error here carries its own what-to-do
        if not isinstance(exc, AwsSnapshotError | LookupError | OSError) and "botocore" not in type(exc).__module__:
            raise
        raise fail(str(exc)) from None
    for item in created:
        what = "volume" if item.kind == "ebs" else "DB instance"
        out.print(
            f"restored {item.source} of backup {manifest.backup_id} as {what} {item.resource_id} in {region} from "
            f"snapshot {item.snapshot_id}: {item.state} after {human_duration(item.seconds)}",
            highlight=False,
            markup=False,
        )
