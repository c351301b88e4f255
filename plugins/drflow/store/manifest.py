"""A backup's manifest (manifest.json): what was backed up, how, its objects with size and sha256, retention.

The catalog (:mod:`drflow.store.catalog`) writes it last, so a backup exists only once its manifest does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from drflow.retention import RetentionPolicy
from drflow.store.base import StoreError, check_key

FORMAT_VERSION: Final = 1
MANIFEST_NAME = "manifest.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256_RE = r"^[0-9a-f]{64}$"

BackupType = Literal["full", "incremental", "differential", "snapshot", "logical"]


def is_backup_object(key: str) -> bool:
    """True for a backup's data objects (``<spec>/<component>/backups/<id>/<name>``), not its manifest."""
    parts = key.split("/")
    return len(parts) >= 5 and parts[2] == "backups" and parts[-1] != MANIFEST_NAME


def check_name(value: str, what: str) -> str:
    """A single path segment usable in keys: letters, digits, '.', '_', '-', not starting with '.'."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError(
            f"invalid {what} {value!r}: use letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    return value


def make_backup_id(policy: str, when: datetime) -> str:
    """A sortable, readable id: ``20261127T102300Z-daily-full`` for policy 'daily-full'.

    Derive ``when`` from the run's logical date, not the wall clock, so that a
    retried task gets the same id and finds (or clears) its earlier try.
    """
    check_name(policy, "backup policy name")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"make_backup_id needs a timezone-aware datetime, got {when!r}")
    return f"{when.astimezone(UTC):%Y%m%dT%H%M%SZ}-{policy}"


class StoredObject(BaseModel):
    """One file of a backup, as stored: its name inside the backup directory, size and sha256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=_SHA256_RE)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        return check_object_name(name)


def check_object_name(name: str) -> str:
    try:
        check_key(name)
    except StoreError as exc:
        raise ValueError(str(exc)) from None
    if name == MANIFEST_NAME:
        raise ValueError(f"object name {MANIFEST_NAME!r} is reserved for the backup manifest")
    return name


def _duration(fields: dict[str, Any]) -> float:
    started, finished = fields.get("started_at"), fields.get("finished_at")
    if started is None or finished is None:
        return 0.0  # the missing field already fails validation
    return max((finished - started).total_seconds(), 0.0)


def _stored_bytes(fields: dict[str, Any]) -> int:
    return sum(o.size for o in fields.get("objects", []))


def _expiry(fields: dict[str, Any]) -> datetime:
    finished = fields.get("finished_at") or datetime.fromtimestamp(0, UTC)
    return finished + timedelta(days=fields.get("retention_days") or 0)


class EncryptionRecord(BaseModel):
    """How a copy's objects are encrypted: ``client`` (drflow, before upload) or ``server`` (S3 SSE); no key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layer: Literal["client", "server"]
    algorithm: str
    key_id: str | None = None


class LockRecord(BaseModel):
    """The S3 Object Lock of a copy's objects: mode and until when nobody (compliance) can delete them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["governance", "compliance"]
    retain_until: AwareDatetime


class TableChecksum(BaseModel):
    """A table's content at backup time: its rows and a checksum over them (see validation_data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int = Field(ge=0)
    checksum: str


class PgbenchBaseline(BaseModel):
    """A short read-only pgbench run on the source at backup time, the baseline of a `pgbench` check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tps: float = Field(ge=0)
    latency_ms: float | None = None
    clients: int = Field(ge=1)
    duration_s: float = Field(gt=0)
    transactions: int = Field(ge=0)


class ValidationBaseline(BaseModel):
    """What typed validation checks compare a restored copy with, recorded on the source right after the backup.

    Keyed by what was measured (`schema.table`, a pgbench run's key), not by check name, so drills and plan
    steps that measure the same table share one value.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    recorded_at: AwareDatetime
    lsn: str | None = None
    """The source's WAL position of the snapshot the values were read in (the backup ends at or before it)."""
    checksums: dict[str, TableChecksum] = Field(default_factory=dict)
    row_counts: dict[str, int] = Field(default_factory=dict)
    pgbench: dict[str, PgbenchBaseline] = Field(default_factory=dict)


class BackupManifest(BaseModel):
    """Everything needed to trust and restore one backup, written as manifest.json.

    duration_s, stored_bytes and expires_at are derived (from the times, the
    objects and retention_days) when not given.
    """

    model_config = ConfigDict(extra="forbid")

    format_version: Literal[1] = FORMAT_VERSION
    backup_id: str
    spec: str
    component: str
    policy: str
    backup_type: BackupType
    method: str
    parent_id: str | None = None
    started_at: AwareDatetime
    finished_at: AwareDatetime
    duration_s: float = Field(default_factory=_duration, ge=0)
    start_lsn: str | None = None
    end_lsn: str | None = None
    timeline: int | None = None
    pg_version: str | None = None
    system_identifier: str | None = None
    database_size_bytes: int | None = Field(default=None, ge=0)
    compression: str = "none"
    objects: list[StoredObject] = Field(default_factory=list)
    stored_bytes: int = Field(default_factory=_stored_bytes, ge=0)
    retention_days: int = Field(ge=0)
    retention_policy: RetentionPolicy = "standard"
    expires_at: AwareDatetime = Field(default_factory=_expiry)
    validation_values: dict[str, str] = Field(default_factory=dict)
    validation_baseline: ValidationBaseline | None = None
    targets: list[str] = Field(default_factory=list)
    encryption: list[EncryptionRecord] = Field(default_factory=list)
    object_lock: LockRecord | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("backup_id", "spec", "component", "policy", "parent_id")
    @classmethod
    def _valid_names(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else check_name(value, str(info.field_name))

    @model_validator(mode="after")
    def _consistent(self) -> BackupManifest:
        if self.finished_at < self.started_at:
            raise ValueError(f"finished_at {self.finished_at} is before started_at {self.started_at}")
        names = [o.name for o in self.objects]
        if len(names) != len(set(names)):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"objects listed twice: {dupes}")
        return self

    def object_named(self, name: str) -> StoredObject:
        for obj in self.objects:
            if obj.name == name:
                return obj
        names = [o.name for o in self.objects]
        raise KeyError(f"backup {self.backup_id} has no object {name!r}; it has {names}")

    def client_key_id(self) -> str | None:
        """The id of the key the objects were encrypted with client-side, None when they were not."""
        return next((r.key_id for r in self.encryption if r.layer == "client"), None)
