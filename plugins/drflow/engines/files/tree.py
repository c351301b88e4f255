"""Directory trees with GNU tar's ``--listed-incremental`` snapshots, compressed with zstd.

A full backup starts from an empty snapshot file; an incremental one from the snapshot file its parent
left (the previous backup of any level), a differential one from the last full's. The snapshot file tar
leaves is stored with the entry, so the next backup can build on it. A restore extracts the chain (full
first) with ``--listed-incremental=/dev/null``: each incremental archive lists every directory's
contents, so tar deletes what was gone at that backup; owners (numeric) and modes are kept.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from drflow import process
from drflow.engines.files.digest import TreeDigest, TreeError, tree_digest
from drflow.hosts import Host, HostError, tail
from drflow.units import human_duration

ARCHIVE_NAME = "tree.tar.zst"
SNAPSHOT_NAME = "tree.snar"
# Exit status 1 of GNU tar on create: some files changed while being read (a live tree); the archive is
# still a complete one of the tree as tar read it.
_TAR_SOME_CHANGED = 1
# Multithreaded zstd (one worker per core): the same zstd format, read by any zstd (a restore runs plain zstd).
_ZSTD_CREATE = "zstd -T0"


@dataclass(frozen=True)
class TreeBackup:
    archive: Path
    snapshot: Path
    digest: TreeDigest
    started_at: float
    finished_at: float
    warnings: str = ""
    archive_size: int = 0
    archive_sha256: str = ""
    """Of the archive as written (hashed while tar wrote it, so it is not read again to store it)."""


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
    The tree's digest is computed in a thread while tar runs. tar runs on this worker as its user (what
    ``host.run`` without ``as_db_user`` does): its output is read here, hashed and written in one pass.
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
        argv = [
            "tar",
            "--create",
            "--file",
            "-",
            "--use-compress-program",
            _ZSTD_CREATE,
            f"--listed-incremental={snapshot}",
            "--numeric-owner",
            "--directory",
            str(source),
            ".",
        ]
        try:
            result = process.run_to_file(argv, archive, timeout=timeout)
        except FileNotFoundError as exc:
            raise HostError(
                f"cannot run tar: {exc.strerror}; install GNU tar and zstd on the worker", argv=argv
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise HostError(
                f"tar did not finish archiving {source} within {human_duration(exc.timeout)}; raise the policy's "
                "timeout "
                "or find out why it hangs",
                argv=argv,
                stderr=str(exc.stderr or ""),
            ) from exc
        tree = pending.result() if pending is not None else TreeDigest("", 0, 0, 0)
    if result.returncode not in (0, _TAR_SOME_CHANGED):
        raise HostError(
            f"tar could not archive {source} (exit code {result.returncode}):\n{tail(result.stderr)}\n"
            "check that the directory is readable by the worker and the scratch directory has space",
            returncode=result.returncode,
            stderr=result.stderr,
        )
    return TreeBackup(
        archive,
        snapshot,
        tree,
        started,
        time.time(),
        tail(result.stderr) if result.returncode else "",
        archive_size=result.size,
        archive_sha256=result.sha256,
    )


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
