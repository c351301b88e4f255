"""Configuration backups, history, diff, restore and drills: a source + the store, no Airflow.

Each storage target is written on its own: one that fails never blocks the others, and a target
that already holds the content stores nothing new. The run fails afterwards, naming the failed ones.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drflow.engines.config.source import ConfigSnapshot, read_config
from drflow.spec.config import ConfigSource
from drflow.store.base import StoreError
from drflow.store.config_versions import ConfigVersion, ConfigVersions, VersionFile, listing_sha256, new_version_id
from drflow.store.factory import open_store
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)


class ConfigJobError(RuntimeError):
    """A configuration backup, restore or drill failed; the message says what and what to do."""


@dataclass
class BackupOutcome:
    sha256: str
    size: int
    stored: dict[str, str] = field(default_factory=dict)
    """target → version id committed by this run."""
    unchanged: dict[str, str] = field(default_factory=dict)
    """target → newest version id, whose content equals the snapshot (nothing stored)."""
    blobs_uploaded: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "stored": self.stored,
            "unchanged": self.unchanged,
            "blobs_uploaded": self.blobs_uploaded,
            "failed": self.failed,
        }


def component_versions(spec_name: str, component: str, target: Mapping[str, Any]) -> ConfigVersions:
    return ConfigVersions(open_store(target), spec_name, component)


def back_up_config(
    spec_name: str,
    component: str,
    source: ConfigSource,
    targets: Sequence[Mapping[str, Any]],
    snapshot: ConfigSnapshot | None = None,
    retention_days: int | None = None,
) -> BackupOutcome:
    """Store the source's current content as a new version in every target where it differs from the newest."""
    snap = snapshot if snapshot is not None else read_config(source)
    files = tuple(VersionFile(f.path, f.mode, f.sha256, len(f.data)) for f in snap.files)
    outcome = BackupOutcome(sha256=snap.sha256, size=snap.size)
    now = datetime.now(UTC)
    version = ConfigVersion(
        version_id=new_version_id(snap.sha256, now),
        sha256=snap.sha256,
        taken_at=now.isoformat(timespec="milliseconds"),
        expires_at=(now + timedelta(days=retention_days)).isoformat(timespec="seconds") if retention_days else None,
        size=snap.size,
        files=files,
        source=source.describe(),
    )
    for target in targets:
        name = str(target.get("name"))
        try:
            versions = component_versions(spec_name, component, target)
            newest = versions.newest()
            if newest is not None and newest.sha256 == snap.sha256:
                outcome.unchanged[name] = newest.version_id
                continue
            for f in snap.files:
                outcome.blobs_uploaded += versions.put_blob(f.sha256, f.data)
            versions.commit(version)
            outcome.stored[name] = version.version_id
        except (StoreError, OSError) as exc:
            log.warning("config backup into %s failed: %s", name, exc)
            outcome.failed[name] = str(exc)
    if outcome.failed:
        problems = "; ".join(f"{n}: {m}" for n, m in outcome.failed.items())
        ok = ", ".join([*outcome.stored, *outcome.unchanged]) or "none"
        raise ConfigJobError(
            f"config of {component} could not be stored in every target ({problems}); targets holding it: "
            f"{ok}. Fix the failed targets and clear the task: it stores only what they lack"
        )
    return outcome


def history(versions: ConfigVersions) -> list[ConfigVersion]:
    return versions.versions()


def resolve_version(versions: ConfigVersions, version_id: str | None) -> ConfigVersion:
    """The version named (a full id or a unique prefix of it or of its hash), or the newest."""
    every = versions.versions()
    if not every:
        raise ConfigJobError(
            f"no config version stored in {versions.store.describe()} under {versions.prefix}; run the config "
            "backup DAG (or check --spec/--component/--target)"
        )
    if version_id is None:
        return every[-1]
    matches = [v for v in every if v.version_id == version_id] or [
        v for v in every if v.version_id.startswith(version_id) or v.sha256.startswith(version_id)
    ]
    if len(matches) == 1:
        return matches[0]
    what = "matches no" if not matches else f"matches {len(matches)}"
    raise ConfigJobError(
        f"{version_id!r} {what} stored config version; give a full version id from `drflow config history`"
    )


def diff_versions(versions: ConfigVersions, old: ConfigVersion, new: ConfigVersion) -> str:
    """A unified diff of every file that differs between two versions (added, removed, changed, mode)."""
    before = {f.path: f for f in old.files}
    after = {f.path: f for f in new.files}
    out: list[str] = []
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path), after.get(path)
        if a is not None and b is not None and a.sha256 == b.sha256:
            if a.mode != b.mode:
                out.append(f"mode of {path}: {a.mode:o} -> {b.mode:o}\n")
            continue
        old_lines = _lines(versions, a)
        new_lines = _lines(versions, b)
        out.extend(
            difflib.unified_diff(
                old_lines,
                new_lines,
                fromfile=f"{old.version_id}/{path}" if a else "/dev/null",
                tofile=f"{new.version_id}/{path}" if b else "/dev/null",
            )
        )
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def restore_version(versions: ConfigVersions, version: ConfigVersion, to: Path) -> str:
    """Write the version's files into ``to`` (absent or empty), each checked; return the tree's hash.

    Files are written into a hidden staging directory beside ``to`` and renamed into place at the
    end, so an interrupted restore never leaves a half-written tree at ``to``.
    """
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise ConfigJobError(f"{to} exists and is not an empty directory; restore into a new or empty directory")
    to.parent.mkdir(parents=True, exist_ok=True)
    staging = to.parent / f".{to.name}.drflow-restoring"
    if staging.exists():
        _remove_tree(staging)
    staging.mkdir(mode=0o700)
    try:
        for f in version.files:
            data = versions.read_blob(f)
            dest = staging / f.path
            if not dest.resolve().is_relative_to(staging.resolve()):
                raise ConfigJobError(f"version {version.version_id} names a file outside its tree: {f.path!r}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            os.chmod(dest, f.mode)
        restored = listing_sha256(
            [VersionFile(f.path, f.mode, _file_sha256(staging / f.path), f.size) for f in version.files]
        )
        if to.exists():
            to.rmdir()
        staging.rename(to)
    except BaseException:
        _remove_tree(staging)
        raise
    return restored


def drill_config(versions: ConfigVersions, version: ConfigVersion, scratch: Path) -> dict[str, Any]:
    """Restore a version into scratch and compare the restored tree's hash with the recorded one."""
    restored = restore_version(versions, version, scratch / "config")
    return {
        "version_id": version.version_id,
        "taken_at": version.taken_at,
        "expected_sha256": version.sha256,
        "restored_sha256": restored,
        "hash_matches": restored == version.sha256,
        "files": len(version.files),
        "size": version.size,
        "restored_to": str(scratch / "config"),
    }


def _lines(versions: ConfigVersions, f: VersionFile | None) -> Sequence[str]:
    if f is None:
        return []
    data = versions.read_blob(f)
    try:
        return data.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return [f"(binary content, {f.size} bytes, sha256 {f.sha256})\n"]


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def config_drill(
    spec_name: str,
    component: str,
    targets: Sequence[Mapping[str, Any]],
    *,
    work_dir: str | None = None,
    validate: Callable[[Path], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Restore the newest version of the first target that answers; compare hashes; run ``validate``.

    A target that cannot be read is skipped for the next (targets are independent).
    """
    problems: list[str] = []
    started_at, began = datetime.now(UTC), time.monotonic()
    for target in targets:
        name = str(target.get("name"))
        try:
            versions = component_versions(spec_name, component, target)
            version = resolve_version(versions, None)
            with scratch_dir(work_dir, f"config-drill-{component}") as scratch:
                result = drill_config(versions, version, scratch)
                result["target"] = name
                if validate is not None and result["hash_matches"]:
                    result["validation"] = validate(Path(result["restored_to"]))
        except (StoreError, ConfigJobError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        result["passed"] = bool(result["hash_matches"])
        result["skipped_targets"] = problems
        # The restore time: from the first read of the versions (skipped targets included) to the validated tree.
        result.update(
            started_at=started_at.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            restore_s=round(time.monotonic() - began, 3),
        )
        return result
    raise ConfigJobError(f"no target could be drilled for the config of {component}: {'; '.join(problems)}")
