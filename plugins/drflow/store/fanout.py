"""One backup id written into several storage targets, each on its own.

A target that fails (unreachable, misconfigured, full) never blocks the others and never costs them
their copy: each target commits its manifest on its own, a committed manifest is never removed by a
retry, and a retry only fills the targets that are missing, by copying the committed backup (each
object's sha256 checked on the way) instead of taking it again. So every copy of one backup id holds
the same data, and a restore can use any of them. The run still fails, naming the targets that
failed, so Airflow alerts and retries.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from drflow.store.base import StoreError
from drflow.store.catalog import Catalog
from drflow.store.manifest import BackupManifest, StoredObject
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)


class TargetsFailedError(StoreError):
    """A backup could not be stored in some (or all) of its targets; the message names them and why."""

    def __init__(self, message: str, *, failed: Mapping[str, str], committed: Sequence[str]) -> None:
        super().__init__(message)
        self.failed = dict(failed)
        self.committed = list(committed)


@dataclass
class TargetCopy:
    """The state of one backup id in one target during a run."""

    name: str
    catalog: Catalog
    committed: BackupManifest | None = None
    error: str | None = None
    needs_it: bool = True
    """False when the target failed because it cannot use the backup yet (WAL with no full backup there)."""


def group_problems(problems: Sequence[tuple[str, str]]) -> list[str]:
    """One line per distinct problem: ``a, b: message`` for targets that report the same thing."""
    grouped: dict[str, list[str]] = {}
    for name, message in problems:
        grouped.setdefault(message, []).append(name)
    return [f"{', '.join(names)}: {message}" for message, names in grouped.items()]


class Fanout:
    """Writes one backup id into every target of a policy; see the module docstring."""

    def __init__(self, copies: list[TargetCopy], component: str, backup_id: str) -> None:
        self.copies = copies
        self.component = component
        self.backup_id = backup_id

    @classmethod
    def begin(cls, catalogs: Sequence[tuple[str, Catalog]], component: str, backup_id: str) -> Fanout:
        """Start (or resume) the backup in every target: find committed copies, clear unfinished tries.

        A target that cannot be reached is marked failed and the others go on.
        """
        copies = []
        for name, catalog in catalogs:
            copy = TargetCopy(name, catalog)
            try:
                copy.committed = catalog.begin(component, backup_id)
            except StoreError as exc:
                copy.error = str(exc)
                log.warning("target %s cannot take backup %s: %s", name, backup_id, exc)
            copies.append(copy)
        return cls(copies, component, backup_id)

    @property
    def committed(self) -> list[TargetCopy]:
        return [c for c in self.copies if c.committed is not None]

    @property
    def pending(self) -> list[TargetCopy]:
        """Targets that still need the backup and have not failed in this run."""
        return [c for c in self.copies if c.committed is None and c.error is None]

    @property
    def failed(self) -> list[TargetCopy]:
        return [c for c in self.copies if c.committed is None and c.error is not None]

    @property
    def recorded(self) -> BackupManifest | None:
        """The manifest of the backup as a target committed it (in an earlier try), if any did."""
        return self.committed[0].committed if self.committed else None

    def resume(self, work_dir: str | None = None) -> BackupManifest | None:
        """A retry's shortcut: when an earlier try committed the backup, copy it into the targets still missing
        it and return its manifest (raising, see :meth:`finish`, when some still fail); else None, once some
        target can take the backup (see :meth:`require_target`)."""
        recorded = self.recorded
        if recorded is None:
            self.require_target()
            return None
        self.fill_missing(work_dir)
        return self.finish(recorded)

    def fail(self, copy: TargetCopy, error: str, *, needs_it: bool = True) -> None:
        copy.error = error
        copy.needs_it = needs_it
        log.warning("target %s failed for backup %s: %s", copy.name, self.backup_id, error)
        # Best effort: leave nothing half-written; the retry's begin() clears what this cannot.
        with contextlib.suppress(StoreError):
            copy.catalog.discard(self.component, self.backup_id)

    def require_target(self) -> None:
        """Raise when no target can take the backup, before any work is done for it."""
        if not self.pending and not self.committed:
            raise self._error()

    def put_objects(
        self, files: Mapping[str, Path], *, known: Mapping[str, StoredObject] | None = None, move: bool = False
    ) -> list[StoredObject]:
        """Store the files in every pending target; a target that fails is dropped from this run.

        ``known``: size and sha256 of files hashed while they were written. ``move``: the files are
        scratch copies the last target may take by a rename (after every other target has its copy).
        Returns the stored objects (the same in every target); raises when no target took them.
        """
        objects: list[StoredObject] | None = None
        pending = self.pending
        for copy in pending:
            log.info("storing %d objects in %s (%s)", len(files), copy.name, copy.catalog.store.describe())
            last = copy is pending[-1]
            try:
                stored = [
                    copy.catalog.put_object(
                        self.component,
                        self.backup_id,
                        name,
                        path,
                        known=(known or {}).get(name),
                        move=move and last,
                    )
                    for name, path in sorted(files.items())
                ]
            except StoreError as exc:
                self.fail(copy, str(exc))
                continue
            objects = objects or stored
        if objects is None:
            raise self._error()
        return objects

    def commit(self, manifest: BackupManifest) -> None:
        """Commit the manifest in every pending target, each on its own."""
        for copy in self.pending:
            try:
                copy.catalog.commit(manifest)
            except StoreError as exc:
                self.fail(copy, str(exc))
                continue
            copy.committed = manifest

    def fill_missing(self, work_dir: str | None = None) -> None:
        """Copy the committed backup into every pending target (a retry after a target failed).

        Objects are fetched from a committed copy with their sha256 checked, then stored and committed
        with the same manifest; a corrupt or unreachable source is skipped for the next one.
        """
        pending = self.pending
        if not pending:
            return
        sources = self.committed
        with scratch_dir(work_dir, f"fill-{self.backup_id}") as staging:
            files: dict[str, Path] | None = None
            manifest: BackupManifest | None = None
            source_problems = []
            for source in sources:
                assert source.committed is not None
                try:
                    files = source.catalog.fetch(source.committed, staging / source.name)
                except StoreError as exc:
                    source_problems.append(f"copy in {source.name}: {exc}")
                    continue
                manifest = source.committed
                log.info("filling %s with backup %s from %s", [c.name for c in pending], self.backup_id, source.name)
                break
            if files is None or manifest is None:
                for copy in pending:
                    copy.error = "no committed copy could be read to fill it: " + "; ".join(source_problems)
                return
            for copy in self.pending:
                try:
                    for obj in manifest.objects:
                        copy.catalog.put_object(self.component, self.backup_id, obj.name, files[obj.name])
                    copy.catalog.commit(manifest)
                except StoreError as exc:
                    self.fail(copy, str(exc))
                    continue
                copy.committed = manifest

    def finish(self, manifest: BackupManifest) -> BackupManifest:
        """Return the manifest when every target holds the backup; otherwise raise naming the failed ones."""
        if self.failed or not self.committed:
            raise self._error()
        return manifest

    def _error(self) -> TargetsFailedError:
        failed = {c.name: c.error or "not stored" for c in self.copies if c.committed is None}
        committed = [c.name for c in self.committed]
        problems = "\n  ".join(group_problems(list(failed.items())))
        if committed:
            message = (
                f"backup {self.backup_id} of {self.component} is stored in {', '.join(committed)} but not in "
                f"{', '.join(failed)}:\n  {problems}\n"
                "The stored copies stay. Fix the failed target(s); the task's retry (or clearing it) copies "
                "the stored backup into them."
            )
        else:
            message = (
                f"backup {self.backup_id} of {self.component} was stored in no target:\n  {problems}\n"
                "Fix the storage target(s) named above, then retry the task."
            )
        return TargetsFailedError(message, failed=failed, committed=committed)
