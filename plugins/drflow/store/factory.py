"""Open the backup store a spec's target describes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from drflow.store.base import BackupStore, StoreError
from drflow.store.catalog import Catalog
from drflow.store.lock import ObjectLock

STORE_TYPES = ("local", "s3")


def open_store(target: Mapping[str, Any], lock: ObjectLock | None = None) -> BackupStore:
    """A store for ``{"type": "local", "path": ...}`` or ``{"type": "s3", "bucket": ..., ...}``.

    ``lock``: the Object Lock of every backup object it writes (a backup policy's retention); a store that
    cannot lock refuses it in its preflight.

    Keys other than the ones a type needs are ignored (targets carry more, e.g. retention).
    """
    name = target.get("name", "<unnamed>")
    kind = target.get("type")
    if kind == "local":
        path = _required(target, "path", name)
        if not Path(path).is_absolute():
            raise StoreError(
                f"backup target {name!r}: path {path!r} is relative; give an absolute directory "
                f"so every worker resolves it the same way"
            )
        from drflow.store.local import LocalStore

        local = LocalStore(Path(path))
        # A directory cannot lock: compliance is refused by its preflight; governance on it is drflow's own rule.
        local.lock = lock if lock is not None and lock.mode == "COMPLIANCE" else None
        return _encrypted(target, local)
    if kind == "s3":
        from drflow.store.s3 import S3Store

        s3 = S3Store(
            bucket=_required(target, "bucket", name),
            prefix=str(target.get("prefix") or ""),
            aws_conn_id=target.get("conn_id") or "aws_default",
            region=target.get("region") or None,
            server_side_encryption=target.get("server_side_encryption") or None,
            kms_key_id=target.get("kms_key_id") or None,
            storage_class=target.get("storage_class") or None,
        )
        s3.lock = lock
        return _encrypted(target, s3)
    raise StoreError(f"backup target {name!r}: unknown type {kind!r}; use one of {', '.join(STORE_TYPES)}")


def target_catalogs(
    spec_name: str, targets: Sequence[Mapping[str, Any]], *, lock: ObjectLock | None = None
) -> list[tuple[str, Catalog]]:
    """``(target name, its catalog of spec_name's backups)`` for every target, in the order given.

    ``lock``: the Object Lock of the backup about to be written (see :class:`~drflow.store.lock.ObjectLock`).
    """
    return [(str(target["name"]), Catalog(open_store(target, lock), spec_name)) for target in targets]


def _encrypted(target: Mapping[str, Any], store: BackupStore) -> BackupStore:
    """The store itself, or wrapped in client-side encryption when the target asks for it."""
    from drflow.store.keys import KeyRef

    key_ref = KeyRef.from_target(target)
    if key_ref is None:
        return store
    from drflow.store.encrypted import EncryptedStore

    return EncryptedStore(store, key_ref)


def _required(target: Mapping[str, Any], key: str, name: str) -> str:
    value = target.get(key)
    if not value or not isinstance(value, str):
        raise StoreError(f"backup target {name!r} of type {target.get('type')!r} needs a {key!r} (a string)")
    return value
