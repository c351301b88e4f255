"""Object Lock of a backup's objects: the retention policy's mode, and until when, fixed at upload time.

``governance`` and ``compliance`` put every object of a backup (its data and its manifest) under S3
Object Lock retention of that mode until ``retain_until`` (the time the store was opened for the
backup, plus the policy's days). ``standard`` locks nothing. S3 itself then refuses to delete a locked
object version: in compliance mode nobody can, in governance mode only a caller with the bypass
permission. A store that cannot lock (a local directory) refuses a lock in its preflight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from drflow.retention import RetentionPolicy

LockMode = Literal["GOVERNANCE", "COMPLIANCE"]


@dataclass(frozen=True)
class ObjectLock:
    """The lock every object of one backup gets."""

    mode: LockMode
    retain_until: datetime

    @classmethod
    def for_retention(cls, policy: RetentionPolicy, days: int, now: datetime | None = None) -> ObjectLock | None:
        """The lock a retention policy asks for (None for standard)."""
        if policy == "standard":
            return None
        start = now or datetime.now(UTC)
        mode: LockMode = "COMPLIANCE" if policy == "compliance" else "GOVERNANCE"
        return cls(mode, (start + timedelta(days=days)).replace(microsecond=0))

    def record(self) -> dict[str, str]:
        """What the manifest records of it."""
        return {"mode": self.mode.lower(), "retain_until": self.retain_until.isoformat()}


def is_locked_key(key: str) -> bool:
    """Keys a lock applies to: every object of a backup, manifest included (not reports)."""
    parts = key.split("/")
    return len(parts) >= 5 and parts[2] == "backups"
