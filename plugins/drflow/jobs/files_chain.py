"""Chains of file-storage backups: which entry a new one builds on, which entries a restore replays, gaps.

A full starts a chain; an incremental builds on the previous file backup of any level, a differential on
the last full (``parent_id``). Entries are gathered over every storage target (one backup id holds the
same data in every target), so a link missing in one target is taken from another; a link missing in all
of them is a gap, reported like a WAL gap: by the entries it cuts off and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drflow.store.base import StoreError
from drflow.store.catalog import Catalog
from drflow.store.manifest import BackupManifest

FILES_METHODS = frozenset({"tar", "s3-copy"})


class FilesChainError(LookupError):
    """No restorable chain for the request; the message says which link is missing and what to do."""


@dataclass
class FileEntries:
    """The committed file backups of one component over all targets (by id), and the unreadable targets."""

    by_id: dict[str, BackupManifest] = field(default_factory=dict)
    where: dict[str, list[str]] = field(default_factory=dict)
    """backup id → the targets that hold a committed copy, in spec order."""
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def ordered(self) -> list[BackupManifest]:
        return sorted(self.by_id.values(), key=lambda m: (m.finished_at, m.backup_id))


def gather(catalogs: Sequence[tuple[str, Catalog]], component: str, exclude: str | None = None) -> FileEntries:
    entries = FileEntries()
    for name, catalog in catalogs:
        try:
            manifests = catalog.list_backups(component)
        except StoreError as exc:
            entries.unreadable.append((name, str(exc)))
            continue
        for manifest in manifests:
            if manifest.method in FILES_METHODS and manifest.backup_id != exclude:
                entries.by_id.setdefault(manifest.backup_id, manifest)
                entries.where.setdefault(manifest.backup_id, []).append(name)
    return entries


def chain_of(entries: FileEntries, backup_id: str) -> list[BackupManifest]:
    """The entries to replay for ``backup_id``, full first; FilesChainError at the first missing link."""
    chain: list[BackupManifest] = []
    current: str | None = backup_id
    while current is not None:
        manifest = entries.by_id.get(current)
        if manifest is None:
            below = chain[-1]
            raise FilesChainError(
                f"gap in the chain of backup {backup_id}: {below.backup_id} ({below.backup_type}) builds on "
                f"{current}, which no readable storage target holds; backups from {below.backup_id} up to the next "
                "full cannot be restored. Restore an older backup (drflow backups list), or take a full backup now "
                "so later backups do not depend on the missing one"
            )
        if len(chain) > len(entries.by_id):
            raise FilesChainError(f"the chain of backup {backup_id} loops at {current}; take a full backup now")
        chain.append(manifest)
        current = manifest.parent_id if manifest.backup_type != "full" else None
    chain.reverse()
    return chain


def gaps(entries: FileEntries) -> list[str]:
    """One message per entry whose chain has a missing link (empty when every entry is restorable)."""
    found = []
    for manifest in entries.ordered():
        try:
            chain_of(entries, manifest.backup_id)
        except FilesChainError as exc:
            found.append(str(exc))
    return found


def base_for(entries: FileEntries, level: str) -> tuple[BackupManifest | None, str]:
    """The entry a new backup of ``level`` builds on (None: take a full), and why when it was promoted."""
    if level == "full":
        return None, ""
    ordered = entries.ordered()
    candidates = ordered if level == "incremental" else [m for m in ordered if m.backup_type == "full"]
    if not candidates:
        return None, f"no full backup to build a {level} backup on; taken as a full"
    base = candidates[-1]
    try:
        chain_of(entries, base.backup_id)
    except FilesChainError as exc:
        return None, f"the previous backup cannot be restored ({exc}); taken as a full"
    return base, ""


def choose(entries: FileEntries, backup_id: str | None, at: datetime | None) -> BackupManifest:
    """The requested entry, or the newest finished at or before ``at``, or the newest."""
    ordered = entries.ordered()
    if backup_id is not None:
        if backup_id in entries.by_id:
            return entries.by_id[backup_id]
        raise FilesChainError(
            f"no file backup {backup_id!r} in any readable storage target; known, newest first: "
            f"{_names(reversed(ordered[-5:]))}"
        )
    if at is not None:
        ordered = [m for m in ordered if m.finished_at <= at]
        if not ordered:
            raise FilesChainError(
                f"no file backup finished at or before {at.isoformat()}; pick a later --at or a --backup "
                "from drflow backups list"
            )
    if not ordered:
        raise FilesChainError("no file backup yet; run the component's backup policy first")
    return ordered[-1]


def _names(manifests: Iterable[BackupManifest]) -> str:
    return ", ".join(m.backup_id for m in manifests) or "none"


def files_sources(
    target: str, manifests: Sequence[BackupManifest], now: datetime, problems: list[str]
) -> list[dict[str, Any]]:
    """RPO compliance: the age of the newest file backup in one target whose chain is whole (in that target).

    A gap is a problem of the report, and the entries it cuts off do not count.
    """
    entries = FileEntries()
    for manifest in manifests:
        if manifest.method in FILES_METHODS:
            entries.by_id.setdefault(manifest.backup_id, manifest)
            entries.where.setdefault(manifest.backup_id, []).append(target)
    found = gaps(entries)
    problems.extend(f"{target}: {gap}" for gap in found[-1:])  # the newest gap says it all
    for manifest in reversed(entries.ordered()):
        try:
            chain_of(entries, manifest.backup_id)
        except FilesChainError:
            continue
        return [
            {
                "source": f"files:{target}",
                "lag_s": round((now - manifest.finished_at).total_seconds(), 3),
                "backup_id": manifest.backup_id,
            }
        ]
    return []
