"""Copies of verified backups into secondary-region and offline targets, as their own job.

The backup writes only its policy's ``targets``; this job (the backup DAG's ``copy_backup`` task, after
verify) copies every committed entry of the policy that a ``copy_to`` target lacks: objects fetched from a
source copy with their sha256 checked, stored, the manifest committed last, then every object read back
from the destination and checked again. Each destination is on its own: one that fails never blocks the
others, and nothing here ever writes, rewrites or deletes a source copy (a destination copy that fails
its check is discarded, unless a lock keeps it). The copy lag of each entry (copied at minus finished at)
goes into a ``copy`` report in the destination, and RPO compliance reads a copy target's newest backup age.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drflow.store.base import StoreError
from drflow.store.catalog import Catalog
from drflow.store.factory import target_catalogs
from drflow.store.lock import ObjectLock
from drflow.store.manifest import BackupManifest
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)


@dataclass
class CopyResult:
    """What one run did per destination: entries copied (with their lag), and the problems, by target."""

    copied: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"copied": self.copied, "failed": self.failed}


def copy_backups(
    spec_name: str,
    component: str,
    policy: str,
    sources: Sequence[Mapping[str, Any]],
    destinations: Sequence[Mapping[str, Any]],
    *,
    lock: ObjectLock | None = None,
    work_dir: str | None = None,
    now: datetime | None = None,
) -> CopyResult:
    """Copy every committed entry of ``policy`` that a destination lacks, from the first source that has it."""
    source_catalogs = target_catalogs(spec_name, sources)
    result = CopyResult()
    for name, destination in target_catalogs(spec_name, destinations, lock=lock):
        try:
            result.copied[name] = _fill(destination, source_catalogs, component, policy, work_dir)
        except StoreError as exc:
            result.failed[name] = str(exc)
            log.warning("copy into %s failed: %s", name, exc)
            continue
        if result.copied[name]:
            stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
            with contextlib.suppress(StoreError):  # the copies stand without their report
                destination.write_report(component, "copy", f"{stamp}-{policy}", {"copied": result.copied[name]})
    return result


def _fill(
    destination: Catalog,
    sources: Sequence[tuple[str, Catalog]],
    component: str,
    policy: str,
    work_dir: str | None,
) -> list[dict[str, Any]]:
    destination.store.preflight()
    have = {m.backup_id for m in destination.list_backups(component)}
    wanted: dict[str, tuple[str, Catalog, BackupManifest]] = {}
    problems: list[str] = []
    for source_name, source in sources:
        try:
            entries = source.list_backups(component)
        except StoreError as exc:
            problems.append(f"source {source_name}: {exc}")
            continue
        for manifest in entries:
            if manifest.policy == policy and manifest.backup_id not in have:
                wanted.setdefault(manifest.backup_id, (source_name, source, manifest))
    copied: list[dict[str, Any]] = []
    for backup_id, (source_name, source, manifest) in sorted(wanted.items(), key=lambda i: i[1][2].finished_at):
        _copy_one(destination, source, manifest, work_dir)
        copied_at = datetime.now(UTC)
        copied.append(
            {
                "backup_id": backup_id,
                "from": source_name,
                "finished_at": manifest.finished_at.isoformat(),
                "copied_at": copied_at.isoformat(),
                "lag_s": round((copied_at - manifest.finished_at).total_seconds(), 3),
            }
        )
        log.info("copied %s from %s to %s", backup_id, source_name, destination.store.describe())
    if problems and not copied and not wanted:
        raise StoreError("; ".join(problems))
    return copied


def _copy_one(destination: Catalog, source: Catalog, manifest: BackupManifest, work_dir: str | None) -> None:
    component, backup_id = manifest.component, manifest.backup_id
    if destination.begin(component, backup_id) is not None:
        return  # committed by an earlier try
    clean = manifest.model_copy(update={"encryption": [], "object_lock": None})  # the destination records its own
    with scratch_dir(work_dir, f"copy-{backup_id}") as staging:
        files = source.fetch(manifest, Path(staging))  # sha256 checked on the way out of the source
        for obj in manifest.objects:
            destination.put_object(component, backup_id, obj.name, files[obj.name])
        destination.commit(clean)
    problems = destination.verify(destination.get(component, backup_id))
    if problems:
        with contextlib.suppress(StoreError):
            destination.discard(component, backup_id)
        raise StoreError(
            f"the copy of {backup_id} in {destination.store.describe()} does not match its manifest: "
            f"{'; '.join(problems)}; check the target, the next run copies it again"
        )
