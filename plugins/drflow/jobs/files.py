"""File-storage backups (a directory tree with GNU tar, or an S3 prefix) into every target, and restores.

Same store and catalog as the database backups: objects with sha256, the manifest last, each target on
its own (:class:`~drflow.store.fanout.Fanout`). The manifest's ``extra`` keeps what a drill and a restore
need: the tree digest at backup time (trees) or the object count and bytes (prefixes).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from drflow.engines.files import s3prefix
from drflow.engines.files.digest import TreeError, tree_digest
from drflow.engines.files.tree import ARCHIVE_NAME, SNAPSHOT_NAME, backup_tree, extract_archive
from drflow.hosts import Host
from drflow.jobs.files_chain import FileEntries, FilesChainError, base_for, chain_of, choose, gather
from drflow.jobs.request import PolicyBackupRequest
from drflow.store.base import StoreError
from drflow.store.catalog import Catalog
from drflow.store.factory import target_catalogs
from drflow.store.fanout import Fanout
from drflow.store.manifest import BackupManifest, StoredObject
from drflow.store.s3_client import open_s3_client
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)
Level = Literal["full", "incremental", "differential"]


@dataclass(frozen=True, kw_only=True)
class FilesBackupRequest(PolicyBackupRequest):
    level: Level
    datastore: Mapping[str, Any]
    """``{"type": "files", "path": …}`` or ``{"type": "s3-prefix", "bucket", "prefix", "conn_id", "region"}``."""
    host: Host | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class FilesRestore:
    manifest: BackupManifest
    chain: list[str]
    fetch_s: float
    apply_s: float
    digest_ok: bool | None
    """Trees: whether the restored tree's digest equals the one recorded at backup time."""


def take_files_backup(request: FilesBackupRequest) -> BackupManifest:
    """Back up the datastore at ``request.level`` into every target; idempotent for one backup id."""
    catalogs = target_catalogs(request.spec_name, request.targets)
    fanout = Fanout.begin(catalogs, request.component, request.backup_id)
    if (recorded := fanout.resume(request.work_dir)) is not None:
        return recorded
    entries = gather(catalogs, request.component, exclude=request.backup_id)
    base, promoted = base_for(entries, request.level)
    if promoted:
        log.warning("%s backup %s: %s", request.level, request.backup_id, promoted)
    with scratch_dir(request.work_dir, f"files-{request.backup_id}") as staging:
        if request.datastore["type"] == "files":
            manifest = _tree_backup(request, fanout, catalogs, entries, base, staging)
        else:
            manifest = _prefix_backup(request, fanout, catalogs, entries, base, staging)
    if promoted:
        manifest.extra["promoted"] = promoted
    fanout.commit(manifest)
    return fanout.finish(manifest)


def _manifest(request: FilesBackupRequest, base: BackupManifest | None, **fields: Any) -> BackupManifest:
    finished = fields["finished_at"]
    return BackupManifest(
        backup_id=request.backup_id,
        spec=request.spec_name,
        component=request.component,
        policy=request.policy,
        backup_type=request.level if base is not None else "full",
        parent_id=base.backup_id if base is not None else None,
        retention_days=request.retention_days,
        retention_policy=request.retention_policy,
        expires_at=finished + timedelta(days=request.retention_days),
        targets=[t["name"] for t in request.targets],
        **fields,
    )


def _tree_backup(
    request: FilesBackupRequest,
    fanout: Fanout,
    catalogs: Sequence[tuple[str, Catalog]],
    entries: FileEntries,
    base: BackupManifest | None,
    staging: Path,
) -> BackupManifest:
    from drflow.hosts.open import open_host
    from drflow.spec.hosts import host_from_params, ssh_conn_of

    snapshot = None
    if base is not None:
        snapshot = fetch_objects(catalogs, entries, base, [SNAPSHOT_NAME], staging / "base")[SNAPSHOT_NAME]
    out = staging / "new"
    out.mkdir()
    source = Path(str(request.datastore["path"]))
    host = request.host or open_host(*ssh_conn_of(host_from_params(request.datastore.get("host"))))
    try:
        result = backup_tree(host, source, out, base_snapshot=snapshot, timeout=request.timeout)
    finally:
        if request.host is None:
            host.close()
    written = StoredObject(name=ARCHIVE_NAME, size=result.archive_size, sha256=result.archive_sha256)
    stored = fanout.put_objects(
        {ARCHIVE_NAME: result.archive, SNAPSHOT_NAME: result.snapshot}, known={ARCHIVE_NAME: written}, move=True
    )
    extra: dict[str, Any] = {
        "datastore": "files",
        "path": str(source),
        "tree_digest": result.digest.sha256,
        "tree_entries": result.digest.entries,
        "tree_files": result.digest.files,
        "tree_bytes": result.digest.bytes,
    }
    if result.warnings:
        extra["tar_warnings"] = result.warnings
    return _manifest(
        request,
        base,
        method="tar",
        started_at=datetime.fromtimestamp(result.started_at, UTC),
        finished_at=datetime.fromtimestamp(result.finished_at, UTC),
        compression="zstd",
        objects=stored,
        extra=extra,
    )


def _prefix_backup(
    request: FilesBackupRequest,
    fanout: Fanout,
    catalogs: Sequence[tuple[str, Catalog]],
    entries: FileEntries,
    base: BackupManifest | None,
    staging: Path,
) -> BackupManifest:
    ds = request.datastore
    bucket, prefix = str(ds["bucket"]), str(ds.get("prefix") or "")
    started = datetime.now(UTC)
    client, _ = open_s3_client(ds.get("conn_id"), ds.get("region"), {})
    base_listing: dict[str, s3prefix.ListedObject] = {}
    if base is not None:
        got = fetch_objects(catalogs, entries, base, [s3prefix.LISTING_NAME], staging / "base")
        base_listing = s3prefix.load_listing(got[s3prefix.LISTING_NAME].read_bytes())
    now = s3prefix.list_prefix(client, bucket, prefix)
    changed = s3prefix.changed_keys(now, base_listing)
    files: dict[str, Path] = {}
    listing: dict[str, s3prefix.ListedObject] = {}
    for rel, (etag, size) in now.items():
        if rel in changed:
            name = s3prefix.object_name(rel)
            s3prefix.download(client, bucket, prefix, rel, staging / name)
            files[name] = staging / name
            listing[rel] = s3prefix.ListedObject(etag, size, request.backup_id, name)
        else:
            listing[rel] = base_listing[rel]
    (staging / s3prefix.LISTING_NAME).write_bytes(s3prefix.dump_listing(listing))
    files[s3prefix.LISTING_NAME] = staging / s3prefix.LISTING_NAME
    stored = fanout.put_objects(files)
    return _manifest(
        request,
        base,
        method="s3-copy",
        started_at=started,
        finished_at=datetime.now(UTC),
        objects=stored,
        extra={
            "datastore": "s3-prefix",
            "source": f"s3://{bucket}/{prefix}",
            "objects_listed": len(now),
            "objects_copied": len(changed),
            "bytes_listed": sum(size for _, size in now.values()),
        },
    )


def fetch_objects(
    catalogs: Sequence[tuple[str, Catalog]],
    entries: FileEntries,
    manifest: BackupManifest,
    names: Sequence[str] | None,
    dest: Path,
) -> dict[str, Path]:
    """Some (``names``) or all objects of an entry from its first intact copy, sha256 checked."""
    wanted = (
        manifest
        if names is None
        else manifest.model_copy(update={"objects": [manifest.object_named(n) for n in names]})
    )
    problems = []
    holders = entries.where.get(manifest.backup_id, [])
    for name, catalog in catalogs:
        if name not in holders:
            continue
        try:
            return catalog.fetch(wanted, dest / name)
        except StoreError as exc:
            problems.append(f"{name}: {exc}")
    raise FilesChainError(
        f"no intact copy of backup {manifest.backup_id} of {manifest.component}:\n  "
        + "\n  ".join(problems or ["no target holds it"])
        + "\nRepair a copy from another target, or restore an older backup (drflow backups list)"
    )


def restore_files(
    spec_name: str,
    component: str,
    targets: Sequence[Mapping[str, Any]],
    to: Path,
    *,
    backup_id: str | None = None,
    at: datetime | None = None,
    host: Host | None = None,
    work_dir: str | None = None,
    say: Callable[[str], None] = log.warning,
) -> FilesRestore:
    """Replay the chain of the chosen entry into ``to`` (new or empty); everything is fetched first.

    A restore that fails removes what it wrote (and ``to`` when it created it).
    """
    catalogs = target_catalogs(spec_name, targets)
    entries = gather(catalogs, component)
    for name, why in entries.unreadable:
        say(f"skipped storage target {name}: {why}")
    chosen = choose(entries, backup_id, at)
    chain = chain_of(entries, chosen.backup_id)
    created = not to.exists()
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise FilesChainError(f"{to} is not an empty directory; restore into a new or empty one (nothing was changed)")
    with scratch_dir(work_dir, f"files-restore-{chosen.backup_id}") as staging:
        started = time.monotonic()
        if chosen.method == "tar":
            archives = [
                fetch_objects(catalogs, entries, link, [ARCHIVE_NAME], staging / link.backup_id)[ARCHIVE_NAME]
                for link in chain
            ]
        else:
            objects = _fetch_prefix(catalogs, entries, chain, chosen, staging)
        fetch_s = time.monotonic() - started
        started = time.monotonic()
        digest_ok = None
        to.mkdir(parents=True, exist_ok=True)
        try:
            if chosen.method == "tar":
                from drflow.hosts import LocalHost

                runner = host or LocalHost()
                for archive in archives:
                    extract_archive(runner, archive, to)
                digest_ok = tree_digest(to).sha256 == chosen.extra.get("tree_digest")
            else:
                _lay_out_prefix(objects, to)
        except BaseException:
            _remove_written(to, created)
            raise
    return FilesRestore(chosen, [m.backup_id for m in chain], fetch_s, time.monotonic() - started, digest_ok)


def _fetch_prefix(
    catalogs: Sequence[tuple[str, Catalog]],
    entries: FileEntries,
    chain: Sequence[BackupManifest],
    chosen: BackupManifest,
    staging: Path,
) -> dict[str, Path]:
    """{relative key: local file} of the chosen listing, each object from the entry of the chain that holds it."""
    listing_file = fetch_objects(catalogs, entries, chosen, [s3prefix.LISTING_NAME], staging / "listing")
    listing = s3prefix.load_listing(listing_file[s3prefix.LISTING_NAME].read_bytes())
    in_chain = {m.backup_id: m for m in chain}
    wanted: dict[str, list[str]] = {}
    for item in listing.values():
        if item.backup_id not in in_chain:
            raise FilesChainError(
                f"backup {chosen.backup_id} names objects of {item.backup_id}, which is not in its chain; "
                "take a full backup of the prefix now"
            )
        wanted.setdefault(item.backup_id, []).append(item.object)
    local: dict[str, dict[str, Path]] = {
        bid: fetch_objects(catalogs, entries, in_chain[bid], sorted(set(names)), staging / bid)
        for bid, names in wanted.items()
    }
    return {rel: local[item.backup_id][item.object] for rel, item in listing.items()}


def _lay_out_prefix(files: Mapping[str, Path], to: Path) -> None:
    for rel, path in sorted(files.items()):
        dest = to / s3prefix.safe_relative(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)


def _remove_written(to: Path, created: bool) -> None:
    if created:
        shutil.rmtree(to, ignore_errors=True)
        return
    for child in list(to.iterdir()) if to.is_dir() else []:
        with contextlib.suppress(OSError):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def check_tree(path: Path, manifest: BackupManifest) -> str | None:
    """A drill's verdict on a restored tree: None when its digest equals the one recorded, else the problem."""
    recorded = manifest.extra.get("tree_digest")
    try:
        now = tree_digest(path)
    except TreeError as exc:
        return str(exc)
    if now.sha256 != recorded:
        return (
            f"the tree restored from {manifest.backup_id} has digest {now.sha256} ({now.entries} entries), "
            f"the backup recorded {recorded} ({manifest.extra.get('tree_entries')} entries): the backup chain does "
            "not reproduce the tree; keep the drill's directory and compare, then take a full backup"
        )
    return None
