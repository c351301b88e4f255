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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drflow.engines.postgres.cluster import AUTO_CONF, LocalCluster, SettingValue, remove_settings
from drflow.engines.postgres.restore import RestoreError
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
