"""Every version of a component's configuration, content-addressed, in one storage target.

Layout (keys relative to the store root)::

    <spec>/<component>/config/blobs/<sha256>              one object per distinct file content
    <spec>/<component>/config/versions/<version id>.json  what the config was at one moment

A version lists its files (path, mode, sha256, size), its hash, time and size. It is written last,
after every blob it names is stored and its size checked, so a version that is listed is complete.
A blob is stored once whatever the number of versions (and files) holding that content, and a
snapshot whose hash equals the newest version's is not stored again at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drflow.engines.config.source import snapshot_sha256
from drflow.store.base import BackupStore, MissingKeyError, StoreError


@dataclass(frozen=True)
class VersionFile:
    path: str
    mode: int
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "mode": self.mode, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class ConfigVersion:
    version_id: str
    """``<UTC time>-<12 hex of the hash>``: sortable by time."""
    sha256: str
    taken_at: str
    size: int
    files: tuple[VersionFile, ...]
    source: str = ""
    expires_at: str | None = None
    """When retention allows deleting it (``taken_at`` + the spec's ``retention.days``); recorded, not enforced."""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "expires_at": self.expires_at,
            "version_id": self.version_id,
            "sha256": self.sha256,
            "taken_at": self.taken_at,
            "size": self.size,
            "source": self.source,
            "files": [f.to_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConfigVersion:
        return cls(
            version_id=str(data["version_id"]),
            sha256=str(data["sha256"]),
            taken_at=str(data["taken_at"]),
            size=int(data["size"]),
            source=str(data.get("source", "")),
            expires_at=data.get("expires_at"),
            files=tuple(
                VersionFile(str(f["path"]), int(f["mode"]), str(f["sha256"]), int(f["size"])) for f in data["files"]
            ),
        )


def listing_sha256(files: Sequence[VersionFile]) -> str:
    """The snapshot hash (engines.config.source.snapshot_sha256) of a version's file list."""
    return snapshot_sha256((f.path, f.mode, f.sha256) for f in files)


def new_version_id(sha256: str, now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S}{moment.microsecond // 1000:03d}Z-{sha256[:12]}"


class ConfigVersions:
    """The configuration versions of one component in one store."""

    def __init__(self, store: BackupStore, spec: str, component: str) -> None:
        self.store = store
        self.prefix = f"{spec}/{component}/config"

    def blob_key(self, sha256: str) -> str:
        return f"{self.prefix}/blobs/{sha256}"

    def version_key(self, version_id: str) -> str:
        return f"{self.prefix}/versions/{version_id}.json"

    def versions(self) -> list[ConfigVersion]:
        """Every committed version, oldest first."""
        found = []
        for key in self.store.list_keys(f"{self.prefix}/versions/"):
            if key.endswith(".json"):
                found.append(ConfigVersion.from_json(json.loads(self.store.get_bytes(key))))
        return sorted(found, key=lambda v: v.version_id)

    def newest(self) -> ConfigVersion | None:
        versions = self.versions()
        return versions[-1] if versions else None

    def get(self, version_id: str) -> ConfigVersion:
        try:
            return ConfigVersion.from_json(json.loads(self.store.get_bytes(self.version_key(version_id))))
        except MissingKeyError:
            known = ", ".join(v.version_id for v in self.versions()[-5:]) or "none"
            raise StoreError(
                f"no config version {version_id!r} in {self.store.describe()}; the newest are: {known} "
                "(`drflow config history` lists them all)"
            ) from None

    def put_blob(self, sha256: str, data: bytes) -> bool:
        """Store one content unless it is there already; True when it was uploaded."""
        key = self.blob_key(sha256)
        if self.store.exists(key) and self.store.size(key) == len(data):
            return False
        self.store.put_bytes(key, data)
        if self.store.size(key) != len(data):
            raise StoreError(
                f"{self.store.url_for(key)} does not have the size written ({len(data)} bytes); retry the backup"
            )
        return True

    def commit(self, version: ConfigVersion) -> None:
        """Write the version last, after checking every blob it names is stored with its size."""
        for f in version.files:
            key = self.blob_key(f.sha256)
            if not self.store.exists(key) or self.store.size(key) != f.size:
                raise StoreError(f"{self.store.url_for(key)} is missing or incomplete; retry the backup")
        self.store.put_bytes(self.version_key(version.version_id), json.dumps(version.to_json(), indent=1).encode())

    def read_blob(self, f: VersionFile) -> bytes:
        data = self.store.get_bytes(self.blob_key(f.sha256))
        actual = hashlib.sha256(data).hexdigest()
        if actual != f.sha256:
            raise StoreError(
                f"{self.store.url_for(self.blob_key(f.sha256))} (file {f.path}) has sha256 {actual}, not the "
                f"{f.sha256} its versions record: the copy is corrupt; restore from another target"
            )
        return data
