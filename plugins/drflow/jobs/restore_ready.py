"""Check-only twin of a plan's `restore` step: is there something intact to restore, and room to restore it?

Reads the catalog of each target the step would use (manifests and object sizes, no data), the WAL chain
for a point-in-time restore, and the free space of the work directory. Writes nothing, creates no directory.
Returns ``{"ok": bool, "detail": str, ...}``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drflow.jobs.restore import is_restorable
from drflow.store.base import StoreError
from drflow.store.catalog import Catalog
from drflow.store.factory import open_store
from drflow.store.manifest import BackupManifest
from drflow.store.wal import recoverable_ranges
from drflow.units import human_duration
from drflow.workdir import DEFAULT_WORK_DIR, WorkDirError, check_work_dir


def restore_ready(
    spec: str,
    component: str,
    targets: Sequence[Mapping[str, Any]],
    *,
    point_in_time: bool = False,
    rpo_s: float | None = None,
    work_dir: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    if not targets:
        return {"ok": False, "detail": f"'{component}' has no storage target: no backup policy writes it"}
    notes: list[str] = []
    found: list[tuple[str, Catalog, BackupManifest]] = []
    wal_ranges = []
    for target in targets:
        name = str(target.get("name"))
        try:
            catalog = Catalog(open_store(target), spec)
            backups = [m for m in catalog.list_backups(component) if is_restorable(m)]
            if point_in_time:
                wal_ranges += recoverable_ranges(catalog, component)
        except (StoreError, OSError) as exc:
            notes.append(f"{name} unreadable ({exc})")
            continue
        if backups:
            newest = max(backups, key=lambda m: (m.finished_at, m.backup_id))
            found.append((name, catalog, newest))
        else:
            notes.append(f"{name} holds no full pg_basebackup backup of '{component}'")
    if not found:
        return {"ok": False, "detail": "nothing to restore: " + "; ".join(notes) + "; run its backup DAG"}
    name, catalog, newest = max(found, key=lambda f: (f[2].finished_at, f[2].backup_id))
    missing = _missing_objects(catalog, newest)
    if missing:
        return {"ok": False, "detail": f"backup {newest.backup_id} in {name} lacks objects: {', '.join(missing)}"}
    age = (now - newest.finished_at).total_seconds()
    detail = [f"newest full backup {newest.backup_id} in {name}, {human_duration(age)} old, objects present"]
    if point_in_time:
        if not wal_ranges:
            return {
                "ok": False,
                "detail": f"{detail[0]}, but no WAL is archived after a full backup: a point-in-time restore has "
                "nothing to replay; enable the component's pg_receivewal policy",
            }
        newest_range = max(wal_ranges, key=lambda r: r.end.time)
        behind = (now - newest_range.end.time).total_seconds()
        detail.append(f"recoverable {newest_range.describe()} ({human_duration(behind)} ago)")
        if rpo_s is not None and behind > rpo_s:
            notes.append(f"the newest recoverable point is older than the RPO of {human_duration(rpo_s)}")
    room = _room(work_dir, newest)
    if room:
        return {"ok": False, "detail": room}
    return {"ok": True, "detail": "; ".join(detail + notes), "backup_id": newest.backup_id, "target": name}


def _missing_objects(catalog: Catalog, manifest: BackupManifest) -> list[str]:
    missing = []
    for stored in manifest.objects:
        key = catalog.object_key(manifest.component, manifest.backup_id, stored.name)
        try:
            if not catalog.store.exists(key):
                missing.append(stored.name)
        except StoreError as exc:
            missing.append(f"{stored.name} ({exc})")
    return missing


def _room(work_dir: str | None, manifest: BackupManifest) -> str:
    """Why the work directory cannot take the restored data, or an empty string."""
    try:
        root = check_work_dir(Path(work_dir or os.environ.get("DRFLOW_WORK_DIR") or DEFAULT_WORK_DIR))
    except WorkDirError as exc:
        return str(exc)
    existing = next(p for p in (root, *root.parents) if p.exists())
    need = manifest.database_size_bytes or manifest.stored_bytes
    free = shutil.disk_usage(existing).free
    if free < need:
        return f"{existing} has {free} bytes free, the restore needs about {need}: free space or set work_dir"
    return ""
