"""Turn the files of a ``pg_basebackup -Ft`` backup back into a running server.

:func:`lay_out_backup` extracts and verifies (``pg_verifybackup``); it never
touches a directory that holds anything. :func:`start_restored` starts the
result on its own port with no link to the old primary; the server replays the
WAL shipped with the backup to consistency before it accepts connections.

The target-side steps go through a :class:`~drflow.hosts.Host`, but the backup
files must be paths that host can read (true for :class:`~drflow.hosts.LocalHost`).
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from drflow.engines.postgres.cluster import AUTO_CONF, ClusterError, LocalCluster, SettingValue, remove_settings
from drflow.engines.postgres.incomplete import MARKER as INCOMPLETE_MARKER
from drflow.engines.postgres.incomplete import IncompleteRestoreError, check_incomplete, marked_incomplete
from drflow.hosts import Host, HostError, tail

MANIFEST = "backup_manifest"
_BASE = re.compile(r"^base\.tar(\.gz|\.zst)?$")
_WAL = re.compile(r"^pg_wal\.tar(\.gz|\.zst)?$")
_TABLESPACE = re.compile(r"^\d+\.tar(\.gz|\.zst)?$")
_SIGNALS = ("standby.signal", "recovery.signal")
# A restored data directory was just written and never synced: before its first recovery the server syncs
# every file in it. `syncfs` does that with one syncfs() per filesystem instead of an open and fsync per file
# (PostgreSQL's default): measured 1.7–4.7 s → 0.1–0.9 s at pgbench scale 30 here (about 1,000 files). Linux
# only (PostgreSQL has the value only where syncfs() exists), which is also where drflow runs servers.
FIRST_START_SETTINGS: dict[str, SettingValue] = (
    {"recovery_init_sync_method": "syncfs"} if sys.platform.startswith("linux") else {}
)
_Archive = tuple[str, Path]


class RestoreError(RuntimeError):
    """A backup could not be laid out, verified or started; the message says what to do."""


def lay_out_backup(
    files: Mapping[str, Path],
    target_dir: Path,
    *,
    host: Host,
    bin_dir: Path,
    keep_on_failure: bool = False,
    timeout: float | None = None,
    backup_id: str | None = None,
    marked: bool = False,
    sync: bool = False,
) -> Path:
    """Extract the backup into ``target_dir`` (WAL into ``pg_wal``), hand it to the db user
    (mode 700) and check it with ``pg_verifybackup``; return ``target_dir``.

    ``sync``: for a server started right after (PITR, ``--start``): write the extracted files to disk
    (one ``syncfs``) while ``pg_verifybackup`` reads them, so the server's own sync before recovery finds
    nothing left to write; that wait was drflow's and the floor's largest start-up cost.

    ``target_dir`` must be missing or empty, otherwise nothing is changed. If a later step
    fails, what was extracted is removed again (unless ``keep_on_failure``), so a retry
    starts clean. Until the layout is verified, ``target_dir`` holds the incomplete-restore marker
    (:mod:`drflow.engines.postgres.incomplete`); a directory still marked is refused by name.
    With ``marked`` the caller has created ``target_dir`` and holds its marker (:func:`restoring_into`,
    for work that goes on after the layout); the caller then also cleans up after a failure.
    """
    base, wal, manifest = _pick_files(files)
    if marked:
        _lay_out(base, wal, manifest, target_dir, host=host, bin_dir=bin_dir, timeout=timeout, sync=sync)
        return target_dir
    with restoring_into(target_dir, host=host, backup_id=backup_id or "?", keep_on_failure=keep_on_failure):
        _lay_out(base, wal, manifest, target_dir, host=host, bin_dir=bin_dir, timeout=timeout, sync=sync)
    return target_dir


@contextlib.contextmanager
def restoring_into(
    target_dir: Path,
    *,
    host: Host,
    backup_id: str,
    target: str | None = None,
    keep_on_failure: bool = False,
) -> Iterator[None]:
    """Create ``target_dir`` (missing or empty, otherwise nothing is changed) and hold its incomplete-restore
    marker while the body writes into it; the marker goes only when the body succeeds.

    When the body fails (a RestoreError, HostError, ClusterError or OSError), what it wrote is removed
    again — the directory too, if it was created here — unless ``keep_on_failure``, and a RestoreError
    says which. Any other exception (drflow being stopped) leaves the directory marked incomplete.
    """
    existed = _require_empty(target_dir, host)
    host.make_private_dir(target_dir)
    # Written first, removed last: a run killed in between leaves the directory marked incomplete.
    with marked_incomplete(target_dir, backup_id=backup_id, target=target):
        try:
            yield
        except (HostError, RestoreError, ClusterError, OSError) as exc:
            if keep_on_failure:
                note = f"the partial layout was kept in {target_dir} for inspection; empty it before retrying"
            else:
                marker = target_dir / INCOMPLETE_MARKER
                host.run(["find", str(target_dir), "-mindepth", "1", "!", "-path", str(marker), "-delete"], check=False)
                marker.unlink(missing_ok=True)
                note = f"{target_dir} was emptied again"
                if not existed:  # a refused restore leaves no directory it created
                    host.run(["rmdir", str(target_dir)], check=False)
                    note = f"{target_dir} was removed again"
            if isinstance(exc, RestoreError):
                raise RestoreError(f"{exc}\n{note}") from exc
            raise RestoreError(f"restoring into {target_dir} failed: {exc}\n{note}") from exc


def _lay_out(
    base: _Archive,
    wal: _Archive | None,
    manifest: Path,
    target_dir: Path,
    *,
    host: Host,
    bin_dir: Path,
    timeout: float | None,
    sync: bool = False,
) -> None:
    try:
        _extract(base, target_dir, host, timeout)
        if wal is not None:
            host.run(["mkdir", "-p", str(target_dir / "pg_wal")])
            _extract(wal, target_dir / "pg_wal", host, timeout)
        host.run(["cp", str(manifest), str(target_dir / MANIFEST)])
        host.chown_to_db_user(target_dir, recursive=True)
        host.run(["chmod", "700", str(target_dir)])
    except HostError as exc:
        raise RestoreError(f"laying out the backup into {target_dir} failed: {exc}") from exc
    if not sync:
        verify_data_dir(target_dir, host=host, bin_dir=bin_dir, timeout=timeout)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncfs") as pool:
        synced = pool.submit(host.run, ["sync", "-f", str(target_dir)], timeout=timeout)
        verify_data_dir(target_dir, host=host, bin_dir=bin_dir, timeout=timeout)
        synced.result()


def verify_data_dir(target_dir: Path, *, host: Host, bin_dir: Path, timeout: float | None = None) -> str:
    """Run ``pg_verifybackup`` (files against ``backup_manifest`` checksums, WAL parsable).

    Only meaningful before the server first starts in ``target_dir``. Returns its output.
    """
    try:
        result = host.run(
            [str(bin_dir / "pg_verifybackup"), f"--ignore={INCOMPLETE_MARKER}", str(target_dir)],
            as_db_user=True,
            timeout=timeout,
            check=False,
        )
    except HostError as exc:
        raise RestoreError(f"could not run pg_verifybackup on {target_dir}: {exc}") from exc
    output = "\n".join(part for part in (result.stdout, result.stderr) if part.strip())
    if result.returncode != 0:
        raise RestoreError(
            f"pg_verifybackup found problems in {target_dir} (exit code {result.returncode}):\n"
            f"{tail(output)}\n"
            "the backup or its copy is damaged: restore from another backup, or re-fetch it from the store"
        )
    return output


def start_restored(
    target_dir: Path,
    *,
    port: int,
    socket_dir: Path,
    bin_dir: Path,
    host: Host,
    timeout: float = 300.0,
    recovery: Mapping[str, SettingValue] | None = None,
    settings: Mapping[str, SettingValue] | None = None,
) -> LocalCluster:
    """Start a laid-out backup as an independent server on ``port`` and wait until it accepts
    connections.

    ``recovery`` (e.g. ``{"recovery_target_time": "...", "restore_command": "..."}``) is written
    into the configuration together with ``recovery.signal``, for point-in-time recovery;
    ``settings`` are further configuration overrides.
    """
    cluster = LocalCluster(data_dir=target_dir, port=port, socket_dir=socket_dir, bin_dir=bin_dir, host=host)
    if not cluster.is_initialized():
        raise RestoreError(f"{target_dir} holds no data directory; run lay_out_backup() first")
    for name in _SIGNALS:
        (target_dir / name).unlink(missing_ok=True)
    overrides: dict[str, SettingValue] = {
        "archive_mode": "off",
        "primary_conninfo": "",
        "primary_slot_name": "",
        # A restored server has no standbys: a synchronous primary's setting would make every write wait forever.
        "synchronous_standby_names": "",
        **FIRST_START_SETTINGS,
        **(settings or {}),
    }
    if recovery:
        overrides.update(recovery)
    try:
        cluster.configure(**overrides)
        if recovery:
            signal_file = target_dir / "recovery.signal"
            signal_file.touch()
            host.chown_to_db_user(signal_file)
        cluster.start(timeout)
    except (ClusterError, HostError, ValueError) as exc:
        raise RestoreError(f"the restored server in {target_dir} did not come up: {exc}") from exc
    # Used once, before recovery began; a later crash restart of this server syncs the default way.
    remove_settings(target_dir / AUTO_CONF, [name for name in FIRST_START_SETTINGS if name not in (settings or {})])
    return cluster


def _pick_files(files: Mapping[str, Path]) -> tuple[_Archive, _Archive | None, Path]:
    """The base archive, the WAL archive and the manifest; archives keep their canonical name,
    whose suffix says how they are compressed (the path may be named otherwise, e.g. in a cache)."""
    base = [(name, path) for name, path in files.items() if _BASE.match(name)]
    wal = [(name, path) for name, path in files.items() if _WAL.match(name)]
    tablespaces = sorted(name for name in files if _TABLESPACE.match(name))
    unknown = sorted(name for name in files if not (_BASE.match(name) or _WAL.match(name) or name == MANIFEST))
    if tablespaces:
        raise RestoreError(
            f"the backup has tablespace archives ({', '.join(tablespaces)}); restoring tablespaces "
            "is not supported yet: restore them by hand with a tablespace mapping"
        )
    if unknown:
        raise RestoreError(f"unexpected files in the backup: {', '.join(unknown)}")
    if len(base) != 1 or MANIFEST not in files:
        raise RestoreError(f"a base backup needs exactly one base.tar[.gz|.zst] and a {MANIFEST}; got {sorted(files)}")
    for path in (base[0][1], *(p for _, p in wal), files[MANIFEST]):
        if not path.is_file():
            raise RestoreError(f"backup file {path} does not exist; fetch the backup from the store first")
    return base[0], (wal[0] if wal else None), files[MANIFEST]


def _require_empty(target_dir: Path, host: Host) -> bool:
    """Refuse a target that holds anything; return whether it exists (an empty directory)."""
    if host.run(["test", "-e", str(target_dir)], check=False).returncode != 0:
        return False
    try:
        check_incomplete(target_dir)
    except IncompleteRestoreError as exc:
        raise RestoreError(str(exc)) from None
    if host.run(["test", "-d", str(target_dir)], check=False).returncode != 0:
        raise RestoreError(f"restore target {target_dir} is a file, not a directory; choose a new or empty directory")
    found = host.run(["find", str(target_dir), "-mindepth", "1", "-maxdepth", "1", "-print", "-quit"])
    if found.stdout.strip():
        raise RestoreError(
            f"restore target {target_dir} is not empty (found {found.stdout.strip()}); nothing was changed. "
            "Restore into an empty directory, or stop the server there and move its data away first"
        )
    return True


def _extract(archive: _Archive, dest: Path, host: Host, timeout: float | None) -> None:
    name, path = archive
    if name.endswith(".tar.zst"):
        mode = ["--zstd"]
    elif name.endswith(".tar.gz"):
        mode = ["--gzip"]
    elif name.endswith(".tar"):
        mode = []
    else:
        raise RestoreError(f"do not know how to extract {name}: expected .tar, .tar.gz or .tar.zst")
    host.run(["tar", *mode, "--no-same-owner", "-xf", str(path), "-C", str(dest)], timeout=timeout)
