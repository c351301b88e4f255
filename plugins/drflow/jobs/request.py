"""What every backup method's job is given: one base, so the methods' requests add only their own fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drflow.retention import RetentionPolicy
from drflow.store.lock import ObjectLock


@dataclass(frozen=True, kw_only=True)
class PolicyBackupRequest:
    """One run of a backup policy: which backup, into which targets, compressed how, kept how long."""

    spec_name: str
    component: str
    policy: str
    backup_id: str
    targets: Sequence[Mapping[str, Any]]
    retention_days: int
    retention_policy: RetentionPolicy = "standard"
    compression: str = "zstd"
    validation: Sequence[Mapping[str, Any]] = ()
    """Validation queries recorded at backup time (methods that take a snapshot of the data)."""
    work_dir: str | None = None

    def object_lock(self) -> ObjectLock | None:
        """The Object Lock the retention policy puts on every object of this backup (None for standard)."""
        return ObjectLock.for_retention(self.retention_policy, self.retention_days)
