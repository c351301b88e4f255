"""Directory trees with GNU tar's ``--listed-incremental`` snapshots, compressed with zstd.

A full backup starts from an empty snapshot file; an incremental one from the snapshot file its parent
left (the previous backup of any level), a differential one from the last full's. The snapshot file tar
leaves is stored with the entry, so the next backup can build on it. A restore extracts the chain (full
first) with ``--listed-incremental=/dev/null``: each incremental archive lists every directory's
contents, so tar deletes what was gone at that backup; owners (numeric) and modes are kept.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from drflow.engines.files.digest import TreeDigest, TreeError, tree_digest
from drflow.hosts import Host, HostError, tail

ARCHIVE_NAME = "tree.tar.zst"
SNAPSHOT_NAME = "tree.snar"
# Exit status 1 of GNU tar on create: some files changed while being read (a live tree); the archive is
# still a complete one of the tree as tar read it.
_TAR_SOME_CHANGED = 1


@dataclass(frozen=True)
class TreeBackup:
    archive: Path
    snapshot: Path
    digest: TreeDigest
    started_at: float
    finished_at: float
    warnings: str = ""


def backup_tree(
    host: Host,
    source: Path,
    staging: Path,
    *,
    base_snapshot: Path | None,
    timeout: float | None = None,
    digest: bool = True,
) -> TreeBackup:
    """Archive ``source`` into ``staging`` (archive + the snapshot file tar leaves).

    ``base_snapshot`` None takes a full backup; otherwise the changes since the backup that left it.
    The tree's digest is computed in a thread while tar runs.
    """
    if not source.is_dir():
        raise TreeError(
            f"the files datastore path {source} is not a directory on this host; fix datastore.path in the spec"
        )
    archive, snapshot = staging / ARCHIVE_NAME, staging / SNAPSHOT_NAME
    if base_snapshot is not None:
        shutil.copyfile(base_snapshot, snapshot)
    started = time.time()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(tree_digest, source) if digest else None
        result = host.run(
            [
                "tar",
                "--create",
                "--file",
                str(archive),
                "--use-compress-program",
                "zstd",
                f"--listed-incremental={snapshot}",
                "--numeric-owner",
                "--directory",
                str(source),
                ".",
            ],
            timeout=timeout,
            check=False,
        )
        tree = pending.result() if pending is not None else TreeDigest("", 0, 0, 0)
    if result.returncode not in (0, _TAR_SOME_CHANGED):
        raise HostError(
            f"tar could not archive {source} (exit code {result.returncode}):\n{tail(result.stderr)}\n"
            "check that the directory is readable by the worker and the scratch directory has space",
            returncode=result.returncode,
            stderr=result.stderr,
        )
    return TreeBackup(archive, snapshot, tree, started, time.time(), tail(result.stderr) if result.returncode else "")


def extract_archive(host: Host, archive: Path, dest: Path, *, timeout: float | None = None) -> None:
    """Apply one archive of a chain to ``dest`` (deleting what the archive's backup no longer had)."""
    host.run(
        [
            "tar",
            "--extract",
            "--file",
            str(archive),
            "--use-compress-program",
            "zstd",
            "--listed-incremental=/dev/null",
            "--numeric-owner",
            "--preserve-permissions",
            "--directory",
            str(dest),
        ],
        timeout=timeout,
    )
