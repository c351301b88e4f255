"""Retention of configuration versions in one target: which versions are pruned, which blobs go with them.

A version older than the config section's ``retention.days`` is pruned, except the newest version and
the newest ``min_copies`` versions. Deletion keeps the store consistent when interrupted: the version
records first (oldest first), then the blobs they named that no remaining version names — the versions
are listed again after the records went, so a blob a kept (or newly committed) version names is never
deleted. A blob left behind by an interruption goes with the next pruned version naming it, or stays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from drflow.store.config_versions import ConfigVersion, ConfigVersions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionVerdict:
    version: ConfigVersion
    delete: bool
    reason: str

    @property
    def version_id(self) -> str:
        return self.version.version_id


def decide_versions(
    versions: Sequence[ConfigVersion], days: int, min_copies: int, now: datetime
) -> list[VersionVerdict]:
    """The verdict of every version, oldest first."""
    ordered = sorted(versions, key=lambda v: v.version_id)
    keep_newest = max(min_copies, 1)
    verdicts = []
    for rank, version in enumerate(reversed(ordered)):
        taken = datetime.fromisoformat(version.taken_at)
        until = taken + timedelta(days=days)
        if rank == 0:
            verdict = VersionVerdict(version, False, "newest version")
        elif rank < keep_newest:
            verdict = VersionVerdict(version, False, f"one of the {keep_newest} newest versions (min_copies)")
        elif now <= until:
            verdict = VersionVerdict(version, False, f"younger than {days} days (until {until:%Y-%m-%dT%H:%MZ})")
        else:
            verdict = VersionVerdict(version, True, f"older than {days} days (taken {taken:%Y-%m-%dT%H:%MZ})")
        verdicts.append(verdict)
    return list(reversed(verdicts))


def freed_blobs(doomed: Sequence[ConfigVersion], kept: Sequence[ConfigVersion]) -> list[str]:
    """The sha256 of the blobs the doomed versions name and no kept version does."""
    named = {f.sha256 for v in kept for f in v.files}
    return sorted({f.sha256 for v in doomed for f in v.files} - named)


def prune(store: ConfigVersions, verdicts: Sequence[VersionVerdict]) -> tuple[list[str], list[str]]:
    """Delete the doomed version records (oldest first), then the blobs they named that no remaining
    version names (the versions are listed again, after the records went).

    Only blobs of pruned versions are candidates: a blob an unfinished backup has just uploaded (its version
    not committed yet) is never touched. Returns (deleted version ids, deleted blob sha256s)."""
    doomed = [v.version for v in verdicts if v.delete]
    for version in doomed:
        store.store.delete(store.version_key(version.version_id))
        log.info("pruned config version %s", version.version_id)
    blobs = freed_blobs(doomed, store.versions())
    for sha in blobs:
        store.store.delete(store.blob_key(sha))
    return [v.version_id for v in doomed], blobs
