"""Reference checks of snapshot sources: a snapshot policy needs the component's `snapshots:`."""

from __future__ import annotations

from typing import Any

from drflow.spec.diagnostics import Diagnostic
from drflow.spec.source import Loc, Source

SNAPSHOT_PRESETS = frozenset({"system-image"})
DRILLABLE_METHODS = frozenset({"pg_basebackup", "snapshot"})
"""Methods whose newest backup a drill restores: a base backup into a scratch instance, a snapshot into AWS."""


def takes_snapshots(policy: Any) -> bool:
    """A backup entry (policy or preset, as written) that snapshots the component's `snapshots` source."""
    return isinstance(policy, dict) and (policy.get("method") == "snapshot" or policy.get("preset") in SNAPSHOT_PRESETS)


def check_snapshot_policy(source: Source, loc: Loc, policy: Any, snapshots: Any) -> list[Diagnostic]:
    """A snapshot policy on a component without `snapshots:` has nothing to snapshot."""
    if not takes_snapshots(policy) or snapshots is not None:
        return []
    key = "method" if "method" in policy else "preset"
    message = f"backup policy '{policy.get('name') or policy.get('preset')}' takes snapshots, but the component has no "
    message += "'snapshots:' source to take them of"
    hint = (
        "add snapshots: {conn_id, region, ebs: {volume_id | tags}} or {…, rds: {db_instance}} to the component, "
        "or use a database method"
    )
    return [source.diagnostic((*loc, key), message, hint)]
