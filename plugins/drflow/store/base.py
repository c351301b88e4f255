"""The backup store interface: a flat key/value space of immutable objects.

Keys are '/'-separated and relative to the store root (a directory or an S3
bucket+prefix). Writes are all-or-nothing: a reader sees either the whole new
object or nothing, never a partly written one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drflow.store.lock import ObjectLock

CHUNK_SIZE = 1024 * 1024


class StoreError(Exception):
    """A store operation failed. The message says what failed, where, and what to do."""


class MissingKeyError(StoreError):
    """The key does not exist in the store."""


class LockedObjectError(StoreError):
    """Objects are under an unexpired Object Lock: drflow never deletes them (S3 would refuse, or hide them)."""


def check_key(key: str) -> str:
    """Return key if it is a valid relative object key, else raise StoreError."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise StoreError(f"invalid store key {key!r}: keys are relative, '/'-separated and name an object")
    _check_segments(key, key.split("/"))
    return key


def check_prefix(prefix: str) -> str:
    """Return prefix if it is a valid key prefix ('' means the whole store), else raise StoreError."""
    if prefix.startswith("/"):
        raise StoreError(f"invalid store prefix {prefix!r}: prefixes are relative to the store root")
    if prefix:
        segments = prefix.split("/")
        # The last segment may be partial ("a/b-") or empty (a trailing '/').
        _check_segments(prefix, segments[:-1])
        if segments[-1] in (".", ".."):
            raise StoreError(f"invalid store prefix {prefix!r}: '.' and '..' are not allowed")
    return prefix


def _check_segments(key: str, segments: list[str]) -> None:
    for seg in segments:
        if seg in ("", ".", "..") or "\\" in seg or "\0" in seg:
            raise StoreError(
                f"invalid store key {key!r}: empty, '.' or '..' segments, backslashes and NUL are not allowed"
            )


class BackupStore(ABC):
    """Where backups live. Implementations: LocalStore (a directory) and S3Store (a bucket/prefix)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the store is, for messages: ``s3://bucket/prefix`` or the directory."""

    def url_for(self, key: str) -> str:
        """A readable location of one key, for messages."""
        return f"{self.describe().rstrip('/')}/{key}"

    @abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Store the file at path under key (replacing any object there), atomically."""

    def adopt_file(self, key: str, path: Path) -> bool:
        """Move ``path`` in as ``key`` without copying it, when this store can (a rename on one filesystem).

        Returns False, with ``path`` untouched, when it cannot; the caller then uses :meth:`put_file`.
        """
        return False

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store data under key (replacing any object there), atomically."""

    @abstractmethod
    def get_file(self, key: str, path: Path) -> None:
        """Download key to path; path appears complete or not at all. MissingKeyError if absent."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The content of key. MissingKeyError if absent."""

    @abstractmethod
    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Stream the content of key (for hashing without a local copy). MissingKeyError if absent."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """True if an object is stored under key."""

    @abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]:
        """Sorted keys starting with prefix (a plain string prefix, as in S3)."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Delete one object; True if it existed."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with prefix; return how many. An empty prefix is refused."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Size of the object in bytes. MissingKeyError if absent."""

    lock: ObjectLock | None = None
    """The Object Lock every backup object written now gets (set by the factory from the retention policy)."""

    def preflight(self) -> None:
        """Refuse, before a backup is taken, what this store cannot do; a store without Object Lock refuses a lock."""
        if self.lock is not None:
            raise StoreError(
                f"{self.describe()} cannot lock objects, but the backup policy's retention ({self.lock.mode.lower()}) "
                f"asks for {self.lock.mode.lower()}-mode Object Lock; send such backups to an S3 target whose bucket "
                f"has Object Lock enabled, or use retention policy standard"
            )

    def lock_record(self) -> dict[str, str] | None:
        """The lock of objects written now (mode, retain-until), for the manifest."""
        return self.lock.record() if self.lock is not None else None

    def client_key_id(self) -> str | None:
        """The id of the key this store encrypts backup objects with client-side (None: not encrypted)."""
        return None

    def encryption_records(self) -> list[dict[str, str]]:
        """How objects written now are encrypted (layer, algorithm, key id), for the manifest; never a key."""
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"
