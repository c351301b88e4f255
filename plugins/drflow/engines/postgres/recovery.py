"""Point-in-time recovery of a laid-out base backup: WAL where ``restore_command`` finds it,
the recovery target, and waiting until the server has stopped at the target and promoted.

The WAL is staged as stored (``<segment>.zst``, ``.gz`` or plain, each already checked against its
sha256) in ``drflow_restore_wal`` of the data directory, and ``restore_command`` decompresses one
segment at a time straight into the file the server asks for, as pgBackRest's archive-get does. The
decompressed WAL is never written into the data directory: the server fsyncs every file there before
recovery starts, so decompressing all of it up front cost that fsync (about half of the startup sync
at pgbench scale 30), the decompression itself and its removal afterwards. The server runs the command
from its data directory, so it holds no path given by a user and needs no quoting.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drflow.engines.postgres.cluster import AUTO_CONF, LocalCluster, SettingValue, free_port, remove_settings
from drflow.engines.postgres.incomplete import stop_server
from drflow.engines.postgres.restore import RestoreError, lay_out_backup, restoring_into, start_restored
from drflow.hosts import Host
from drflow.units import human_duration

if TYPE_CHECKING:
    import psycopg

WAL_DIR_NAME = "drflow_restore_wal"
# A staged segment is <name>.zst, <name>.gz (both read by the zstd tool) or <name>. A segment that is
# not there exits non-zero, which the server reads as "not archived" (the end of the WAL, or a
# timeline history file that does not exist).
RESTORE_COMMAND = (
    f"f={WAL_DIR_NAME}/%f; if [ -f $f.zst ]; then zstd -dqf $f.zst -o %p; "
    "elif [ -f $f.gz ]; then zstd -dqf $f.gz -o %p; else cp $f %p; fi"
)
WAL_SUFFIXES = (".zst", ".gz")
RECOVERY_SETTINGS = (
    "restore_command",
    "recovery_target_time",
    "recovery_target_lsn",
    "recovery_target_inclusive",
    "recovery_target_action",
    "recovery_target_timeline",
)
PROMOTION_POLL_S = 0.05


def stage_wal(
    files: Mapping[str, Path], data_dir: Path, *, host: Host, timeout: float | None = None, move: bool = False
) -> Path:
    """Put WAL files (``<segment>``, ``<segment>.zst`` or ``.gz``), as stored, into ``data_dir/drflow_restore_wal``;
    ``move`` them when the caller's copies are scratch (on one filesystem a rename, not a copy)."""
    misnamed = sorted(name for name, path in files.items() if path.name != name or "/" in name)
    if misnamed:  # restore_command looks for the object's own name
        raise RestoreError(f"WAL files not named as their objects: {', '.join(misnamed)}; fetch them with the catalog")
    dest = host.make_private_dir(data_dir / WAL_DIR_NAME)
    if files:
        host.run(
            ["mv" if move else "cp", *(str(path) for _, path in sorted(files.items())), str(dest)], timeout=timeout
        )
    host.chown_to_db_user(dest, recursive=True)
    return dest


def recovery_settings(*, target_time: datetime | None = None, target_lsn: str | None = None) -> dict[str, SettingValue]:
    """Settings that replay the staged WAL up to and including the target, then promote."""
    if (target_time is None) == (target_lsn is None):
        raise ValueError("give exactly one of target_time and target_lsn")
    settings: dict[str, SettingValue] = {
        "restore_command": RESTORE_COMMAND,
        "recovery_target_inclusive": True,
        "recovery_target_action": "promote",
        "recovery_target_timeline": "latest",
    }
    if target_time is not None:
        if target_time.tzinfo is None:
            raise ValueError("target_time needs a timezone")
        settings["recovery_target_time"] = target_time.astimezone(UTC).isoformat(sep=" ")
    else:
        assert target_lsn is not None
        settings["recovery_target_lsn"] = target_lsn
    return settings


def preload_driver() -> threading.Thread:
    """Import psycopg in a thread, while the caller waits on tar: its import is a noticeable part of a short
    restore (0.1–0.5 s measured here) and is only needed once the server runs."""
    thread = threading.Thread(target=importlib.import_module, args=("psycopg",), name="import-psycopg", daemon=True)
    thread.start()
    return thread


def wait_until_promoted(cluster: LocalCluster, timeout: float = 600.0) -> dict[str, Any]:
    """Wait until recovery stopped at its target and the server accepts writes; return where it stopped.

    One connection, asked every 50 ms (a session survives the promotion); a new one only after an error.
    """
    import psycopg

    deadline = time.monotonic() + timeout
    last_error = ""
    db: psycopg.Connection[Any] | None = None
    try:
        while time.monotonic() < deadline:
            try:
                if db is None:
                    db = psycopg.connect(**cluster.conninfo().libpq_kwargs(connect_timeout=5), autocommit=True)
                row = db.execute(
                    "select pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()"
                ).fetchone()
            except psycopg.OperationalError as exc:
                last_error = str(exc).strip()
                if db is not None:
                    db.close()
                    db = None
                if not cluster.is_running():
                    raise RestoreError(
                        f"the server in {cluster.data_dir} stopped during recovery:\n{cluster.log_tail()}\n"
                        "the archived WAL does not reach the target, or a segment is damaged; choose a target inside "
                        "the recoverable range (drflow restore prints it), or restore another backup"
                    ) from exc
                time.sleep(PROMOTION_POLL_S)
                continue
            assert row is not None
            in_recovery, replayed_lsn, last_commit = row
            if not in_recovery:
                return {
                    "replayed_lsn": replayed_lsn,
                    "last_replayed_commit": last_commit.isoformat() if last_commit else None,
                }
            time.sleep(PROMOTION_POLL_S)
    finally:
        if db is not None:
            db.close()
    raise RestoreError(
        f"the server in {cluster.data_dir} was still recovering after {human_duration(timeout)} "
        f"({last_error or 'no error'}):\n"
        f"{cluster.log_tail()}\nraise the timeout for large WAL volumes, or check the server log"
    )


def finish_recovery(cluster: LocalCluster, *, host: Host) -> None:
    """After promotion: remove the staged WAL and the recovery settings (they would apply again if
    someone later made this server a standby)."""
    host.run(["rm", "-rf", str(cluster.data_dir / WAL_DIR_NAME)])
    remove_settings(cluster.data_dir / AUTO_CONF, RECOVERY_SETTINGS)


@dataclass(frozen=True)
class Recovered:
    cluster: LocalCluster
    replayed_lsn: str | None
    last_replayed_commit: str | None
    lay_out_s: float
    recovery_s: float


def recover_backup(
    base_files: Mapping[str, Path],
    wal_files: Mapping[str, Path],
    target_dir: Path,
    *,
    host: Host,
    bin_dir: Path,
    recovery: Mapping[str, SettingValue],
    socket_dir: Path,
    keep_running: bool,
    backup_id: str,
    target: str,
    timeout: float,
) -> Recovered:
    """Lay out a fetched base backup and its WAL in ``target_dir`` (new or empty), replay up to the
    ``recovery`` target and promote; then stop the server cleanly unless ``keep_running``.

    ``target_dir`` stays marked incomplete until the server is in that state: drflow killed at any point
    before — during WAL replay too — leaves a directory the next run names as incomplete, never one that
    looks finished. On a failure the server is stopped and ``target_dir`` emptied again (RestoreError).
    """
    started = time.monotonic()
    with restoring_into(target_dir, host=host, backup_id=backup_id, target=target):
        try:
            lay_out_backup(base_files, target_dir, host=host, bin_dir=bin_dir, timeout=timeout, marked=True, sync=True)
            stage_wal(wal_files, target_dir, host=host, timeout=timeout, move=True)  # the caller's scratch copies
            laid_out = time.monotonic()
            cluster = start_restored(
                target_dir,
                port=free_port(),
                socket_dir=host.make_private_dir(socket_dir),
                bin_dir=bin_dir,
                host=host,
                timeout=timeout,
                recovery=recovery,
            )
            outcome = wait_until_promoted(cluster, timeout)
            finish_recovery(cluster, host=host)
            if not keep_running:
                cluster.stop("fast")
        except BaseException:
            stop_server(target_dir, host=host, bin_dir=bin_dir)  # before its files go (or, on a kill, stay marked)
            raise
    return Recovered(
        cluster=cluster,
        replayed_lsn=outcome["replayed_lsn"],
        last_replayed_commit=outcome["last_replayed_commit"],
        lay_out_s=laid_out - started,
        recovery_s=time.monotonic() - laid_out,
    )
