"""Point-in-time recovery of a laid-out base backup: WAL where ``restore_command`` finds it,
the recovery target, and waiting until the server has stopped at the target and promoted.

``restore_command`` is ``cp drflow_restore_wal/%f %p``: the server runs it from its data
directory, so the command holds no path given by a user and needs no quoting.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from drflow.engines.postgres.cluster import AUTO_CONF, LocalCluster, SettingValue
from drflow.engines.postgres.restore import RestoreError
from drflow.hosts import Host
from drflow.units import human_duration

WAL_DIR_NAME = "drflow_restore_wal"
RECOVERY_SETTINGS = (
    "restore_command",
    "recovery_target_time",
    "recovery_target_lsn",
    "recovery_target_inclusive",
    "recovery_target_action",
    "recovery_target_timeline",
)


def stage_wal(files: Mapping[str, Path], data_dir: Path, *, host: Host, timeout: float | None = None) -> Path:
    """Put WAL files (``<segment>``, ``<segment>.zst`` or ``.gz``) into ``data_dir/drflow_restore_wal``."""
    dest = host.make_private_dir(data_dir / WAL_DIR_NAME)
    compressed = [str(p) for name, p in sorted(files.items()) if name.endswith((".zst", ".gz"))]
    plain = [str(p) for name, p in sorted(files.items()) if not name.endswith((".zst", ".gz"))]
    if compressed:
        # The zstd tool reads gzip too.
        host.run(["zstd", "-d", "-q", "-f", "--output-dir-flat", str(dest), *compressed], timeout=timeout)
    if plain:
        host.run(["cp", *plain, str(dest)], timeout=timeout)
    host.chown_to_db_user(dest, recursive=True)
    return dest


def recovery_settings(*, target_time: datetime | None = None, target_lsn: str | None = None) -> dict[str, SettingValue]:
    """Settings that replay the staged WAL up to and including the target, then promote."""
    if (target_time is None) == (target_lsn is None):
        raise ValueError("give exactly one of target_time and target_lsn")
    settings: dict[str, SettingValue] = {
        "restore_command": f"cp {WAL_DIR_NAME}/%f %p",
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


def wait_until_promoted(cluster: LocalCluster, timeout: float = 600.0) -> dict[str, Any]:
    """Wait until recovery stopped at its target and the server accepts writes; return where it stopped."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(**cluster.conninfo().libpq_kwargs(connect_timeout=5), autocommit=True) as db:
                row = db.execute(
                    "select pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()"
                ).fetchone()
        except psycopg.OperationalError as exc:
            last_error = str(exc).strip()
            if not cluster.is_running():
                raise RestoreError(
                    f"the server in {cluster.data_dir} stopped during recovery:\n{cluster.log_tail()}\n"
                    "the archived WAL does not reach the target, or a segment is damaged; choose a target inside "
                    "the recoverable range (drflow restore prints it), or restore another backup"
                ) from exc
            time.sleep(0.2)
            continue
        assert row is not None
        in_recovery, replayed_lsn, last_commit = row
        if not in_recovery:
            return {
                "replayed_lsn": replayed_lsn,
                "last_replayed_commit": last_commit.isoformat() if last_commit else None,
            }
        time.sleep(0.2)
    raise RestoreError(
        f"the server in {cluster.data_dir} was still recovering after {human_duration(timeout)} "
        f"({last_error or 'no error'}):\n"
        f"{cluster.log_tail()}\nraise the timeout for large WAL volumes, or check the server log"
    )


def finish_recovery(cluster: LocalCluster, *, host: Host) -> None:
    """After promotion: remove the staged WAL and the recovery settings (they would apply again if
    someone later made this server a standby)."""
    host.run(["rm", "-rf", str(cluster.data_dir / WAL_DIR_NAME)])
    conf = cluster.data_dir / AUTO_CONF
    lines = conf.read_text().splitlines()
    kept = [line for line in lines if line.split("=", 1)[0].strip().lower() not in RECOVERY_SETTINGS]
    with conf.open("w") as fh:  # in place: keeps the db user as owner
        fh.write("\n".join(kept) + "\n")
