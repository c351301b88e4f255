"""Take a physical full backup of a running server with ``pg_basebackup`` into a staging directory.

``pg_basebackup`` is a client: it runs on the worker, over a replication
connection, and writes tar files (compressed on the client, so at most one
compressed copy is ever staged) plus a ``backup_manifest`` with CRC32C
checksums of every file, which ``pg_verifybackup`` checks at restore time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from drflow import process
from drflow.engines.postgres.bindir import binaries_major
from drflow.engines.postgres.conninfo import PgConnInfo, replication_hint
from drflow.hosts import tail
from drflow.units import human_duration

Compression = Literal["zstd", "gzip", "none"]
TAR_SUFFIX: dict[str, str] = {"zstd": ".tar.zst", "gzip": ".tar.gz", "none": ".tar"}
_COMPRESS_ARG: dict[str, str] = {"zstd": "client-zstd", "gzip": "client-gzip", "none": "none"}
MANIFEST = "backup_manifest"
log = logging.getLogger(__name__)
# What pg_basebackup -Ft writes; only such leftovers of an earlier attempt are cleared.
_OUR_OUTPUT = re.compile(r"^(?:(?:base|pg_wal|\d+)\.tar(?:\.gz|\.zst|\.lz4)?|backup_manifest(?:\.tmp)?)$")


class BackupError(RuntimeError):
    """A backup could not be taken; the message says why and what to check."""


@dataclass(frozen=True)
class BaseBackupResult:
    files: dict[str, Path]
    """Staged files by name: ``base.tar.zst``, ``pg_wal.tar.zst``, ``backup_manifest`` (+ tablespaces)."""
    label: str
    compression: str
    manifest_checksums: str
    start_lsn: str
    end_lsn: str
    timeline: int
    started_at: datetime
    finished_at: datetime
    duration_s: float
    server_version: str
    server_version_num: int
    system_identifier: int
    database_size_bytes: int
    """Sum of the sizes of all files listed in the backup manifest (uncompressed)."""
    compressed_bytes: int
    """Sum of the sizes of the staged files."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (paths and datetimes as strings), for XCom and the catalog."""
        return {
            "files": {name: str(path) for name, path in self.files.items()},
            "label": self.label,
            "compression": self.compression,
            "manifest_checksums": self.manifest_checksums,
            "start_lsn": self.start_lsn,
            "end_lsn": self.end_lsn,
            "timeline": self.timeline,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_s": self.duration_s,
            "server_version": self.server_version,
            "server_version_num": self.server_version_num,
            "system_identifier": self.system_identifier,
            "database_size_bytes": self.database_size_bytes,
            "compressed_bytes": self.compressed_bytes,
        }


def run_basebackup(
    conn: PgConnInfo,
    staging_dir: Path,
    *,
    bin_dir: Path,
    label: str,
    compression: str = "zstd",
    fast_checkpoint: bool = True,
    manifest_checksums: str = "CRC32C",
    max_rate: str | None = None,
    timeout: float | None = None,
) -> BaseBackupResult:
    """Back up the server at ``conn`` into ``staging_dir`` (created; must be empty or hold only
    leftovers of an earlier attempt, which are cleared). On any failure the staging dir is removed.

    ``compression`` is one of :data:`Compression`. ``max_rate`` throttles the transfer
    (pg_basebackup ``--max-rate``, e.g. ``"50M"``).
    """
    if compression not in TAR_SUFFIX:
        raise ValueError(f"compression must be one of {sorted(TAR_SUFFIX)}, not {compression!r}")
    _prepare_staging(staging_dir)
    try:
        server = _server_info(conn)
        argv = [
            str(bin_dir / "pg_basebackup"),
            "-D",
            str(staging_dir),
            "-Ft",
            "-X",
            "stream",
            *compress_args(compression, binaries_major(bin_dir, "pg_basebackup"), bin_dir),
            f"--manifest-checksums={manifest_checksums}",
            f"--checkpoint={'fast' if fast_checkpoint else 'spread'}",
            f"--label={label}",
            "--no-password",
            "--verbose",
            "-d",
            conn.dsn(),
        ]
        if max_rate:
            argv.append(f"--max-rate={max_rate}")
        started_at = datetime.now(UTC)
        t0 = time.monotonic()
        _run_client(argv, env={**os.environ, **conn.env()}, timeout=timeout, what=conn.describe())
        if compression == "zstd":
            _zstd_wal_archive(staging_dir, timeout)
        duration = time.monotonic() - t0
        finished_at = datetime.now(UTC)
        return _result(staging_dir, label, compression, manifest_checksums, server, started_at, finished_at, duration)
    except BaseException:
        shutil.rmtree(staging_dir, ignore_errors=True)
        raise


def _prepare_staging(staging_dir: Path) -> None:
    if staging_dir.exists():
        if not staging_dir.is_dir():
            raise BackupError(f"staging path {staging_dir} exists and is not a directory")
        entries = list(staging_dir.iterdir())
        foreign = sorted(p.name for p in entries if not (_OUR_OUTPUT.match(p.name) and p.is_file()))
        if foreign:
            raise BackupError(
                f"staging dir {staging_dir} holds files pg_basebackup did not write "
                f"({', '.join(foreign[:5])}); refusing to clear it: pass an empty or new directory"
            )
        for entry in entries:
            entry.unlink()
    else:
        staging_dir.mkdir(parents=True)


def _server_info(conn: PgConnInfo) -> dict[str, Any]:
    import psycopg  # here, not at import: the incident CLI imports this module without connecting

    try:
        with psycopg.connect(**conn.libpq_kwargs(connect_timeout=10), autocommit=True) as db:
            version = db.execute("SHOW server_version").fetchone()
            version_num = db.execute("SHOW server_version_num").fetchone()
            sysid = db.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    except psycopg.Error as exc:
        raise BackupError(
            f"cannot query {conn.describe()} before the backup: {str(exc).strip()}\n"
            "is the primary reachable, and may the role connect (pg_hba.conf, password, "
            "EXECUTE on pg_control_system())?"
        ) from exc
    if not (version and version_num and sysid):
        raise BackupError(f"{conn.describe()} returned no server version or system identifier")
    return {
        "server_version": str(version[0]).split()[0],
        "server_version_num": int(version_num[0]),
        "system_identifier": int(sysid[0]),
    }


def compress_args(compression: str, major: int | None, bin_dir: Path) -> list[str]:
    """pg_basebackup's compression options: ``--compress=client-…`` from PostgreSQL 15 on; before it only
    gzip (``-z``) or nothing. ``major`` None (unknown) is taken as 15 or newer."""
    if major is None or major >= 15:
        return [f"--compress={_COMPRESS_ARG[compression]}"]
    if compression == "zstd":
        raise BackupError(
            f"zstd compression needs pg_basebackup 15 or newer, and {bin_dir} holds PostgreSQL {major}; set the "
            "policy's compression to gzip or none, or set datastore.bin_dir to PostgreSQL 15+ binaries"
        )
    return ["-z"] if compression == "gzip" else []


def _run_client(argv: list[str], *, env: dict[str, str], timeout: float | None, what: str) -> None:
    # Own process group: pg_basebackup forks a WAL streaming child, and a timeout must stop both.
    try:
        result = process.run(argv, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BackupError(
            f"pg_basebackup of {what} did not finish within {human_duration(exc.timeout)} and was stopped\n"
            f"{tail(str(exc.stderr or ''))}\n"
            "raise the policy's timeout (or max_rate), or check whether the server is stuck in a checkpoint"
        ) from None
    except FileNotFoundError as exc:
        raise BackupError(f"cannot run {argv[0]}: {exc.strerror}; set the datastore's bin_dir") from exc
    if result.returncode != 0:
        raise BackupError(
            f"pg_basebackup of {what} failed with exit code {result.returncode}:\n{tail(result.stderr)}\n"
            f"{_hint(result.stderr)}"
        )


def _zstd_wal_archive(staging_dir: Path, timeout: float | None) -> None:
    # PostgreSQL 15 can compress the streamed WAL archive only with gzip; pg_wal.tar stays plain
    # with client-zstd. It is mostly zero-padded 16 MiB segments, so compress it here.
    wal_tar = staging_dir / "pg_wal.tar"
    if not wal_tar.exists():
        return
    if shutil.which("zstd") is None:
        log.warning("zstd command not found: leaving %s uncompressed", wal_tar)
        return
    argv = ["zstd", "-q", "--rm", "-T0", str(wal_tar), "-o", str(wal_tar.with_suffix(".tar.zst"))]
    try:
        result = process.run(argv, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BackupError(
            f"compressing {wal_tar} with zstd took over {human_duration(exc.timeout)} and was stopped; raise the "
            "policy's timeout"
        ) from None
    if result.returncode != 0:
        raise BackupError(f"compressing {wal_tar} with zstd failed:\n{tail(result.stderr)}\nis the disk full?")


def _hint(stderr: str) -> str:
    if hint := replication_hint(stderr):
        return hint
    text = stderr.lower()
    if "closed the connection unexpectedly" in text or "terminating connection" in text:
        return "hint: the server went away during the backup (crash, restart, failover?); check its log, retry"
    if "could not connect" in text or "connection refused" in text:
        return "hint: is the primary reachable on that host and port?"
    return "hint: is the primary reachable and does the role have REPLICATION? Did the server stop?"


def _result(
    staging_dir: Path,
    label: str,
    compression: str,
    manifest_checksums: str,
    server: dict[str, Any],
    started_at: datetime,
    finished_at: datetime,
    duration: float,
) -> BaseBackupResult:
    files = {p.name: p for p in sorted(staging_dir.iterdir()) if p.is_file()}
    for path in files.values():
        path.chmod(0o600)  # a staged backup is the whole database: only its owner may read it
    base = "base" + TAR_SUFFIX[compression]
    missing = [name for name in (base, MANIFEST) if name not in files]
    if missing:
        raise BackupError(
            f"pg_basebackup reported success but {', '.join(missing)} is missing in {staging_dir}; "
            "is another process writing to the staging dir?"
        )
    manifest = _read_manifest(files[MANIFEST])
    ranges = manifest.get("WAL-Ranges") or []
    if not ranges:
        raise BackupError(f"{files[MANIFEST]} has no WAL-Ranges; the backup cannot be restored")
    return BaseBackupResult(
        files=files,
        label=label,
        compression=compression,
        manifest_checksums=manifest_checksums,
        start_lsn=str(ranges[0]["Start-LSN"]),
        end_lsn=str(ranges[-1]["End-LSN"]),
        timeline=int(ranges[-1]["Timeline"]),
        started_at=started_at,
        finished_at=finished_at,
        duration_s=round(duration, 3),
        server_version=server["server_version"],
        server_version_num=server["server_version_num"],
        system_identifier=server["system_identifier"],
        database_size_bytes=sum(int(f["Size"]) for f in manifest.get("Files", [])),
        compressed_bytes=sum(p.stat().st_size for p in files.values()),
    )


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read backup manifest {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise BackupError(f"backup manifest {path} is not a JSON object")
    return data
