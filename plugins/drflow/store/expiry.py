"""Retention enforced on one target's catalog: which entries expire, why each other one stays.

Generic over catalog entries: a *full* entry (``backup_type`` full or snapshot) starts a chain;
an entry with a ``parent_id`` depends on its parent; WAL entries (pg_receivewal) depend on the
LSN range they cover, not on ``parent_id``. Per policy, an entry older than its ``days`` expires,
except:

- a pinned entry (``drflow backups pin``) and its parent chain; a pin does not keep the WAL after a
  pinned base (a base backup restores on its own; pin the WAL entries too to keep its PITR range);
- an entry under a compliance/governance lock (manifest ``extra.object_lock`` or, without one, its
  retention policy) before its retain-until: skipped and reported;
- the newest valid full of its policy, and the newest ``min_copies`` valid fulls;
- the parent chain of every kept entry, and the base a WAL entry kept for its age replays from;
- WAL the kept full backups need: every WAL entry that ends after the start of the oldest PITR
  base kept by the rules above (not by a pin or a lock alone). Older WAL that ends before it is
  expired with it (nothing can replay it);
- pgBackRest entries: pgBackRest's own ``expire`` decides; their catalog records go only when
  pgBackRest no longer lists their label.

Deletion keeps the catalog consistent when interrupted: WAL oldest first (the rest stays one
contiguous run), then other dependents before their parents, fulls last; each entry manifest
first, then its data (``Catalog.discard``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from drflow.engines.postgres.lsn import parse_lsn
from drflow.retention import RETENTION_POLICIES
from drflow.store.base import MissingKeyError
from drflow.store.catalog import Catalog
from drflow.store.manifest import BackupManifest
from drflow.store.pins import Pin
from drflow.store.wal import is_pitr_base, is_wal_entry

log = logging.getLogger(__name__)

FULL_TYPES = frozenset({"full", "snapshot"})
LOCKING_POLICIES = frozenset(p for p in RETENTION_POLICIES if p != "standard")
PGBACKREST = "pgbackrest"
DEFAULT_MIN_COPIES = 2


@dataclass(frozen=True)
class PolicyRules:
    """What the spec says about one backup policy's retention."""

    days: int
    min_copies: int = DEFAULT_MIN_COPIES


@dataclass(frozen=True)
class Verdict:
    """One entry's fate: ``delete`` or kept with ``reason``; ``locked`` when a lock alone keeps it."""

    manifest: BackupManifest
    delete: bool
    reason: str
    locked: bool = False

    @property
    def backup_id(self) -> str:
        return self.manifest.backup_id


@dataclass
class _Keep:
    reasons: dict[str, str] = field(default_factory=dict)
    locked: set[str] = field(default_factory=set)

    def add(self, backup_id: str, reason: str) -> bool:
        if backup_id in self.reasons:
            return False
        self.reasons[backup_id] = reason
        return True


def is_full(manifest: BackupManifest) -> bool:
    return manifest.backup_type in FULL_TYPES


def lock_until(manifest: BackupManifest) -> tuple[str, datetime] | None:
    """(mode, retain-until) of an entry under a lock: the manifest's ``extra.object_lock`` when the
    upload recorded one (``{"mode", "retain_until"}``), else its compliance/governance retention policy
    until ``expires_at``."""
    lock = manifest.extra.get("object_lock")
    if isinstance(lock, Mapping) and lock.get("mode") and lock.get("retain_until"):
        return str(lock["mode"]).lower(), datetime.fromisoformat(str(lock["retain_until"]))
    if manifest.retention_policy in LOCKING_POLICIES:
        return manifest.retention_policy, manifest.expires_at
    return None


def rules_for(manifest: BackupManifest, rules: Mapping[str, PolicyRules]) -> PolicyRules:
    """The spec's rules of the entry's policy; a policy gone from the spec keeps the days it was taken with."""
    return rules.get(manifest.policy) or PolicyRules(days=manifest.retention_days)


def decide(
    manifests: Sequence[BackupManifest],
    rules: Mapping[str, PolicyRules],
    pins: Mapping[str, Pin],
    now: datetime,
    valid: Callable[[BackupManifest], bool],
    pgbackrest_labels: Collection[str] | None = None,
) -> list[Verdict]:
    """The verdict of every entry of one component in one target, oldest first.

    ``valid`` says whether a full's stored objects are all there (only valid fulls count as the
    newest or towards ``min_copies``). ``pgbackrest_labels``: the labels pgBackRest still lists
    (None: unknown, so every pgBackRest record stays).
    """
    by_id = {m.backup_id: m for m in manifests}
    keep = _Keep()

    def old(m: BackupManifest) -> bool:
        return now - m.finished_at > timedelta(days=rules_for(m, rules).days)

    for m in manifests:
        if m.method == PGBACKREST:
            label = m.extra.get("label")
            if pgbackrest_labels is None or label in pgbackrest_labels:
                keep.add(m.backup_id, f"pgBackRest still holds {label} (its repo-retention-full decides)")
        elif not old(m):
            days = rules_for(m, rules).days
            keep.add(
                m.backup_id, f"younger than {days} days (until {m.finished_at + timedelta(days=days):%Y-%m-%dT%H:%MZ})"
            )
    # Fulls: the newest valid one and the newest min_copies valid ones, per policy.
    policies = dict.fromkeys(m.policy for m in manifests if is_full(m) and m.method != PGBACKREST)
    for policy in policies:
        fulls = [m for m in manifests if m.policy == policy and is_full(m) and m.method != PGBACKREST]
        good = [m for m in sorted(fulls, key=lambda m: (m.finished_at, m.backup_id)) if valid(m)]
        wanted = rules_for(good[-1], rules).min_copies if good else 0
        for rank, m in enumerate(reversed(good[-max(wanted, 1) :])):
            if rank == 0:
                keep.add(m.backup_id, f"newest valid full backup of policy {policy}")
            else:
                keep.add(m.backup_id, f"one of the {wanted} newest valid full backups of policy {policy} (min_copies)")
    # Locks: an entry a lock still protects is kept whatever else would happen to it (skipped, reported).
    locked: dict[str, str] = {}
    for m in manifests:
        lock = lock_until(m)
        if lock and lock[1] > now:
            locked[m.backup_id] = f"under {lock[0]} lock until {lock[1]:%Y-%m-%dT%H:%MZ}: expiry cannot delete it"
    # A WAL entry kept for its age keeps the base its range replays from (the newest base ending before it ends).
    all_bases = sorted(
        (m for m in manifests if is_pitr_base(m)), key=lambda m: (parse_lsn(m.end_lsn or "0/0"), m.backup_id)
    )
    for m in manifests:
        if is_wal_entry(m) and m.end_lsn and m.backup_id in keep.reasons:
            before = [b for b in all_bases if parse_lsn(b.end_lsn or "0/0") <= parse_lsn(m.end_lsn)]
            if before:
                keep.add(before[-1].backup_id, f"base backup the kept WAL {m.backup_id} replays from")
    # WAL floor: WAL ending after the start of the oldest PITR base the rules keep stays; older WAL goes with it.
    bases = [m for m in all_bases if m.backup_id in keep.reasons]
    floor_base = min(bases, key=lambda m: parse_lsn(m.start_lsn or m.end_lsn or "0/0"), default=None)
    floor = parse_lsn(floor_base.start_lsn or floor_base.end_lsn or "0/0") if floor_base else None
    below_floor: set[str] = set()
    for m in manifests:
        if not is_wal_entry(m) or not m.end_lsn or floor is None or floor_base is None:
            continue
        if parse_lsn(m.end_lsn) > floor:
            keep.add(m.backup_id, f"WAL needed to replay from kept full backup {floor_base.backup_id}")
        elif m.backup_id not in keep.reasons and m.backup_id not in pins and m.backup_id not in locked:
            below_floor.add(m.backup_id)
    for backup_id, reason in locked.items():
        if keep.add(backup_id, reason):
            keep.locked.add(backup_id)
    # Pins keep their entry (and its parent chain), not the WAL after it: a base backup restores on its own.
    for m in manifests:
        if m.backup_id in pins:
            keep.reasons[m.backup_id] = pins[m.backup_id].describe()
    # Parent chains of kept non-WAL entries.
    for m in manifests:
        if m.backup_id not in keep.reasons or is_wal_entry(m):
            continue
        child, parent_id = m, m.parent_id
        while parent_id and parent_id in by_id:
            if not keep.add(parent_id, f"parent of kept {child.backup_type} backup {child.backup_id}"):
                break
            child, parent_id = by_id[parent_id], by_id[parent_id].parent_id
    verdicts = []
    for m in manifests:
        if m.backup_id in keep.reasons:
            verdicts.append(Verdict(m, False, keep.reasons[m.backup_id], m.backup_id in keep.locked))
        elif m.backup_id in below_floor:
            verdicts.append(
                Verdict(
                    m,
                    True,
                    f"WAL before the oldest kept full backup {floor_base.backup_id if floor_base else ''}: "
                    "nothing can replay it",
                )
            )
        elif m.method == PGBACKREST:
            verdicts.append(Verdict(m, True, f"pgBackRest expired {m.extra.get('label')}: the record goes with it"))
        else:
            days = rules_for(m, rules).days
            verdicts.append(Verdict(m, True, f"older than {days} days (finished {m.finished_at:%Y-%m-%dT%H:%MZ})"))
    return verdicts


def deletion_order(verdicts: Sequence[Verdict]) -> list[BackupManifest]:
    """WAL oldest first, then other dependents newest first (children before parents), fulls last."""
    doomed = [v.manifest for v in verdicts if v.delete]
    wal = sorted((m for m in doomed if is_wal_entry(m)), key=lambda m: (parse_lsn(m.end_lsn or "0/0"), m.backup_id))
    rest = [m for m in doomed if not is_wal_entry(m)]
    dependents = sorted((m for m in rest if not is_full(m)), key=lambda m: (m.finished_at, m.backup_id), reverse=True)
    fulls = sorted((m for m in rest if is_full(m)), key=lambda m: (m.finished_at, m.backup_id))
    return [*wal, *dependents, *fulls]


def objects_present(catalog: Catalog) -> Callable[[BackupManifest], bool]:
    """Whether every object of a manifest is stored with its recorded size (no download)."""

    def check(manifest: BackupManifest) -> bool:
        for obj in manifest.objects:
            try:
                if catalog.store.size(catalog.data_key(manifest, obj.name)) != obj.size:
                    return False
            except MissingKeyError:
                return False
        return True

    return check


def apply(catalog: Catalog, verdicts: Sequence[Verdict]) -> Iterator[dict[str, Any]]:
    """Delete what the verdicts say, in :func:`deletion_order`, yielding one row per deleted entry (so a
    caller knows what went before a failure stopped it)."""
    reasons = {v.backup_id: v.reason for v in verdicts}
    for m in deletion_order(verdicts):
        count = catalog.discard(m.component, m.backup_id)
        log.info("expired %s of %s (%d objects): %s", m.backup_id, m.component, count, reasons[m.backup_id])
        yield {"backup_id": m.backup_id, "objects": count, "reason": reasons[m.backup_id]}
