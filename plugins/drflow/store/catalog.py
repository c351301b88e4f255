"""The self-describing backup catalog, kept in the backup store next to the data.

Layout (keys relative to the store root)::

    <spec>/<component>/backups/<backup_id>/<object files>
    <spec>/<component>/backups/<backup_id>/manifest.json
    <spec>/<component>/reports/<kind>/<name>.json

A backup exists only once its manifest.json is written, and the manifest is
written last, after every object it lists is stored and its size checked. A
backup directory without a manifest is a failed or unfinished try, which the
next ``begin()`` of that backup id clears. The catalog alone (no Airflow
metadata database) is enough to find and restore a backup.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from drflow.store.base import BackupStore, LockedObjectError, MissingKeyError, StoreError
from drflow.store.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    BackupManifest,
    EncryptionRecord,
    LockRecord,
    SharedBackup,
    StoredObject,
    check_name,
    check_object_name,
)
from drflow.store.report_json import json_default

log = logging.getLogger(__name__)
# Objects fetched at a time: a remote store's round trips overlap, and sha256 (which releases the GIL) runs on
# every core.
FETCH_WORKERS = 4


class CatalogError(StoreError):
    """The catalog is missing, unreadable or inconsistent; the message says where and what to do."""


class BackupNotFoundError(CatalogError, LookupError):
    """No committed backup with that id."""


class CorruptBackupError(CatalogError):
    """A stored object is missing or does not match the size/sha256 its manifest records."""

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        expected_sha256: str | None = None,
        actual_sha256: str | None = None,
    ) -> None:
        super().__init__(message)
        self.key = key
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256


class Catalog:
    """The backups and reports of one spec in one store."""

    def __init__(self, store: BackupStore, spec: str) -> None:
        self.store = store
        self.spec = check_name(spec, "spec name")

    # -- layout ----------------------------------------------------------

    def component_prefix(self, component: str) -> str:
        return f"{self.spec}/{check_name(component, 'component name')}/"

    def prefix_for(self, component: str, backup_id: str) -> str:
        """The key prefix (ending in '/') of one backup's directory."""
        return f"{self.component_prefix(component)}backups/{check_name(backup_id, 'backup id')}/"

    def object_key(self, component: str, backup_id: str, name: str) -> str:
        try:
            return self.prefix_for(component, backup_id) + check_object_name(name)
        except ValueError as exc:
            raise CatalogError(str(exc)) from None

    def manifest_key(self, component: str, backup_id: str) -> str:
        return self.prefix_for(component, backup_id) + MANIFEST_NAME

    def data_key(self, manifest: BackupManifest, name: str) -> str:
        """Where an object of ``manifest`` is stored: its own directory, or the holder's of a shared backup."""
        return self.object_key(manifest.data_component, manifest.backup_id, name)

    # -- writing a backup ------------------------------------------------

    def begin(self, component: str, backup_id: str) -> BackupManifest | None:
        """Start (or retry) a backup.

        Returns the manifest if this backup was already committed (a retry of a
        finished task: do nothing). Otherwise deletes whatever an earlier failed
        try left under the backup's prefix and returns None.
        """
        key = self.manifest_key(component, backup_id)
        self.store.preflight()
        if self.store.exists(key):
            manifest = self._load_manifest(key)
            log.info("backup %s already committed at %s", backup_id, self.store.url_for(key))
            return manifest
        try:
            removed = self.store.delete_prefix(self.prefix_for(component, backup_id))
        except LockedObjectError as exc:
            # Locked leftovers stay until their lock expires; this try writes new versions over them.
            log.warning("an unfinished earlier try of %s stays under its lock: %s", backup_id, exc)
            removed = 0
        if removed:
            log.info(
                "removed %d object(s) of an unfinished earlier try under %s",
                removed,
                self.store.url_for(self.prefix_for(component, backup_id)),
            )
        return None

    def discard(self, component: str, backup_id: str) -> int:
        """Delete a backup, committed or not; returns how many objects went (manifest included).

        The manifest goes first, so the backup stops being a catalog entry before
        any of its data disappears. The objects of a shared cluster backup stay while another
        component's entry still records it; the last entry to go takes them. Destructive: callers gate it.
        """
        key = self.manifest_key(component, backup_id)
        shared = None
        with contextlib.suppress(StoreError):
            if self.store.exists(key):
                shared = self._load_manifest(key).shared
        removed = int(self.store.delete(key))
        if shared is None or component != shared.holder:
            removed += self.store.delete_prefix(self.prefix_for(component, backup_id))
        if shared is not None and not self._still_shared(shared, backup_id):
            removed += self.store.delete_prefix(self.prefix_for(shared.holder, backup_id))
        return removed

    def _still_shared(self, shared: SharedBackup, backup_id: str) -> bool:
        """Whether a component's entry (the holder's included) still records the shared backup."""
        return any(self.store.exists(self.manifest_key(name, backup_id)) for name in shared.components)

    def put_object(
        self,
        component: str,
        backup_id: str,
        name: str,
        path: Path,
        *,
        known: StoredObject | None = None,
        move: bool = False,
    ) -> StoredObject:
        """Upload a file as one object of a backup; return its size and sha256.

        ``known``: the size and sha256 its writer computed while writing it (not read again; the size is
        still checked). ``move``: the store may take the file by a rename (it is gone afterwards).
        The stored size is checked after the upload (CatalogError if it differs;
        the backup then cannot be committed, and the retry's begin() clears it).
        """
        key = self.object_key(component, backup_id, name)
        path = Path(path)
        size, digest = (known.size, known.sha256) if known is not None else _hash_file(path)
        if known is not None and path.stat().st_size != size:
            raise CatalogError(
                f"{path} has {path.stat().st_size} bytes but {size} were written; make sure the file is "
                "complete before storing it, then retry"
            )
        if move and self.store.adopt_file(key, path):
            self._check_stored_size(key, size)
            return StoredObject(name=name, size=size, sha256=digest)
        self.store.put_file(key, path)
        if path.stat().st_size != size:
            raise CatalogError(
                f"{path} changed while it was being stored as {self.store.url_for(key)}; "
                f"make sure the file is complete before storing it, then retry"
            )
        self._check_stored_size(key, size)
        return StoredObject(name=name, size=size, sha256=digest)

    def put_object_bytes(self, component: str, backup_id: str, name: str, data: bytes) -> StoredObject:
        """Like put_object for small in-memory data (a backup_label, a list of WAL files …)."""
        key = self.object_key(component, backup_id, name)
        self.store.put_bytes(key, data)
        self._check_stored_size(key, len(data))
        return StoredObject(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    def commit(self, manifest: BackupManifest) -> str:
        """Write manifest.json, making the backup a catalog entry. Returns the manifest key.

        Refuses (CatalogError) when the manifest belongs to another spec, when the
        backup is already committed, or when any listed object is missing or has
        another size than recorded.
        """
        if manifest.spec != self.spec:
            raise CatalogError(
                f"manifest of backup {manifest.backup_id} is for spec {manifest.spec!r}, "
                f"but this catalog is for spec {self.spec!r}"
            )
        key = self.manifest_key(manifest.component, manifest.backup_id)
        if self.store.exists(key):
            raise CatalogError(
                f"backup {manifest.backup_id} is already committed at {self.store.url_for(key)}; "
                f"call begin() first, which returns the committed manifest"
            )
        problems = []
        for obj in manifest.objects:
            obj_key = self.data_key(manifest, obj.name)
            try:
                stored = self.store.size(obj_key)
            except MissingKeyError:
                problems.append(f"{obj.name}: not stored")
                continue
            if stored != obj.size:
                problems.append(f"{obj.name}: {stored} bytes stored, {obj.size} recorded")
        if problems:
            raise CatalogError(
                f"refusing to commit backup {manifest.backup_id} at "
                f"{self.store.url_for(self.prefix_for(manifest.data_component, manifest.backup_id))}: "
                f"{'; '.join(problems)}. Store every object with put_object() before commit()"
            )
        # How this copy is encrypted (algorithm and key id, never a key).
        records = [EncryptionRecord.model_validate(r) for r in self.store.encryption_records()]
        lock = self.store.lock_record()
        update: dict[str, Any] = {"encryption": records} if records else {}
        if lock is not None:
            update["object_lock"] = LockRecord.model_validate(lock)
        stored_manifest = manifest.model_copy(update=update) if update else manifest
        self.store.put_bytes(key, stored_manifest.model_dump_json(indent=2).encode())
        return key

    # -- reading ---------------------------------------------------------

    def list_backups(self, component: str | None = None, *, keys: list[str] | None = None) -> list[BackupManifest]:
        """Committed backups, oldest first (by finished_at, then id); ``keys``: a listing of them already made."""
        prefix = f"{self.component_prefix(component)}backups/" if component else f"{self.spec}/"
        manifests = []
        for key in self.store.list_keys(prefix) if keys is None else [k for k in keys if k.startswith(prefix)]:
            parts = key.split("/")
            if len(parts) == 5 and parts[2] == "backups" and parts[4] == MANIFEST_NAME:
                manifests.append(self._load_manifest(key))
        return sorted(manifests, key=lambda m: (m.finished_at, m.backup_id, m.component))

    def get(self, component: str, backup_id: str) -> BackupManifest:
        key = self.manifest_key(component, backup_id)
        if not self.store.exists(key):
            known = [m.backup_id for m in self.list_backups(component)]
            raise BackupNotFoundError(
                f"no committed backup {backup_id!r} of {self.spec}/{component} in {self.store.describe()}; "
                f"known backups: {', '.join(known[-10:]) or 'none'}"
            )
        return self._load_manifest(key)

    def latest(self, component: str, policy: str | None = None) -> BackupManifest | None:
        backups = [m for m in self.list_backups(component) if policy is None or m.policy == policy]
        return backups[-1] if backups else None

    def fetch(self, manifest: BackupManifest, dest_dir: Path, *, workers: int = FETCH_WORKERS) -> dict[str, Path]:
        """Download every object of a backup into dest_dir and check its size and sha256.

        Returns {object name: local path}. Up to ``workers`` objects at a time (a WAL entry is many small
        segments: one after the other, a remote store's round trips add up). On any mismatch or missing
        object, removes everything it downloaded and raises CorruptBackupError (the first object, in the
        manifest's order, that failed).
        """
        self._check_spec(manifest)
        self._check_key(manifest)
        dest_dir = Path(dest_dir)
        made_dirs = _mkdirs(dest_dir)
        targets = {obj.name: dest_dir / obj.name for obj in manifest.objects}
        written: list[Path] = []
        try:
            for target in targets.values():
                made_dirs += _mkdirs(target.parent)
            with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="fetch") as pool:
                futures = [
                    pool.submit(self._fetch_object, manifest, obj, targets[obj.name], written)
                    for obj in manifest.objects
                ]
                wait(futures, return_when=FIRST_EXCEPTION)
                for future in futures:
                    future.cancel()  # those not started yet; the running ones finish first
            failed = [error for f in futures if not f.cancelled() and (error := f.exception()) is not None]
            if failed:
                raise failed[0]
        except BaseException:
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
            for d in reversed(made_dirs):
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise
        return targets

    def _fetch_object(self, manifest: BackupManifest, obj: StoredObject, target: Path, written: list[Path]) -> None:
        key = self.data_key(manifest, obj.name)
        try:
            self.store.get_file(key, target)
        except MissingKeyError:
            raise CorruptBackupError(
                f"backup {manifest.backup_id} of {manifest.spec}/{manifest.component} is incomplete: "
                f"object {self.store.url_for(key)} is missing. {self._what_to_do(manifest)}",
                key=key,
                expected_sha256=obj.sha256,
            ) from None
        written.append(target)
        size, digest = _hash_file(target)
        if size != obj.size or digest != obj.sha256:
            raise CorruptBackupError(
                f"backup {manifest.backup_id} of {manifest.spec}/{manifest.component} is corrupt: "
                f"object {self.store.url_for(key)} has sha256 {digest} ({size} bytes) but the "
                f"manifest records sha256 {obj.sha256} ({obj.size} bytes). "
                f"{self._what_to_do(manifest)}",
                key=key,
                expected_sha256=obj.sha256,
                actual_sha256=digest,
            )

    def verify(self, manifest: BackupManifest) -> list[str]:
        """Re-hash every stored object of a backup; return the problems found (empty when sound)."""
        self._check_spec(manifest)
        self._check_key(manifest)
        problems = []
        for obj in manifest.objects:
            key = self.data_key(manifest, obj.name)
            where = self.store.url_for(key)
            h = hashlib.sha256()
            size = 0
            try:
                for chunk in self.store.iter_chunks(key):
                    h.update(chunk)
                    size += len(chunk)
            except MissingKeyError:
                problems.append(f"{where}: missing")
                continue
            if size != obj.size:
                problems.append(f"{where}: {size} bytes stored, manifest records {obj.size}")
            elif h.hexdigest() != obj.sha256:
                problems.append(f"{where}: sha256 {h.hexdigest()}, manifest records {obj.sha256}")
        return problems

    # -- reports ---------------------------------------------------------

    def report_key(self, component: str, kind: str, name: str) -> str:
        return (
            f"{self.component_prefix(component)}reports/{check_name(kind, 'report kind')}/"
            f"{check_name(name, 'report name')}.json"
        )

    def write_report(self, component: str, kind: str, name: str, data: dict[str, Any]) -> str:
        """Store a JSON report (drill result, restore timing …); returns its key. Same name replaces."""
        key = self.report_key(component, kind, name)
        payload = json.dumps(data, indent=2, sort_keys=True, default=json_default)
        self.store.put_bytes(key, payload.encode())
        return key

    def read_reports(self, component: str, kind: str) -> list[dict[str, Any]]:
        """The reports of one component and kind, ordered by name (so by time, for stamped names)."""
        return [data for _, data in self.read_named_reports(component, kind)]

    def read_named_reports(self, component: str, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """``(name, report)`` of one component and kind, ordered by name."""
        prefix = f"{self.component_prefix(component)}reports/{check_name(kind, 'report kind')}/"
        reports: dict[str, dict[str, Any]] = {}
        for key in self.store.list_keys(prefix):
            rest = key[len(prefix) :]
            if "/" in rest or not rest.endswith(".json"):
                continue
            try:
                data = json.loads(self.store.get_bytes(key))
            except ValueError as exc:
                raise CatalogError(
                    f"unreadable report {self.store.url_for(key)}: {exc}; fix or delete that file"
                ) from exc
            reports[rest.removesuffix(".json")] = data
        return [(name, reports[name]) for name in sorted(reports)]

    # -- helpers ---------------------------------------------------------

    def _load_manifest(self, key: str) -> BackupManifest:
        where = self.store.url_for(key)
        fix = (
            "the backup cannot be trusted; restore another one with --backup ID, and fix or move away "
            "this manifest (a backup directory without manifest.json is not a catalog entry)"
        )
        raw = self.store.get_bytes(key)
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise CatalogError(f"unreadable backup manifest {where}: not JSON ({exc}); {fix}") from exc
        version = data.get("format_version") if isinstance(data, dict) else None
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise CatalogError(
                f"backup manifest {where} has format_version {version}, newer than this drflow "
                f"understands ({FORMAT_VERSION}); upgrade drflow to read it"
            )
        try:
            manifest = BackupManifest.model_validate(data)
        except ValidationError as exc:
            raise CatalogError(f"invalid backup manifest {where}: {exc}; {fix}") from exc
        expected = key.split("/")
        if [manifest.spec, manifest.component, manifest.backup_id] != [expected[0], expected[1], expected[3]]:
            raise CatalogError(
                f"backup manifest {where} describes {manifest.spec}/{manifest.component}/"
                f"{manifest.backup_id}, not the directory it is in; {fix}"
            )
        return manifest

    def _check_stored_size(self, key: str, size: int) -> None:
        stored = self.store.size(key)
        if stored != size:
            # Left in place: the backup cannot be committed, and begin() of the retry clears it.
            raise CatalogError(
                f"{self.store.url_for(key)} holds {stored} bytes after upload, expected {size}; "
                f"the store lost data in transit: retry, and check the store if it happens again"
            )

    def _check_spec(self, manifest: BackupManifest) -> None:
        if manifest.spec != self.spec:
            raise CatalogError(
                f"backup {manifest.backup_id} belongs to spec {manifest.spec!r}, "
                f"not to this catalog's spec {self.spec!r}"
            )

    def _check_key(self, manifest: BackupManifest) -> None:
        """Refuse, before anything is read, a backup encrypted client-side with a key this store lacks."""
        recorded = manifest.client_key_id()
        if recorded is None:
            return  # not encrypted, or an in-memory manifest: each object's header still names its key
        have = self.store.client_key_id()
        if have is None:
            raise CatalogError(
                f"backup {manifest.backup_id} of {manifest.spec}/{manifest.component} in {self.store.describe()} "
                f"is encrypted client-side with key {recorded}, but this storage target has no client_encryption; "
                f"add client_encryption naming that key to the target in the spec"
            )
        if have.rpartition("#")[2] != recorded.rpartition("#")[2]:
            raise CatalogError(
                f"backup {manifest.backup_id} of {manifest.spec}/{manifest.component} in {self.store.describe()} "
                f"was encrypted with key {recorded}, but the key configured is {have} (another key); nothing was "
                f"read or written. Put the key the backup was taken with into {have.partition('#')[0]} and retry"
            )

    def _what_to_do(self, manifest: BackupManifest) -> str:
        return (
            f"Nothing of it was kept. Restore another backup with --backup ID "
            f"(list them with `drflow backups list --spec <spec file> --component {manifest.component}`) "
            f"and check the store {self.store.describe()}"
        )


def _hash_file(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read once."""
    try:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
            return f.tell(), digest
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc}") from exc


def _mkdirs(path: Path) -> list[Path]:
    """mkdir -p; return the directories it created, outermost first."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))
