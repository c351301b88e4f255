"""WAL staged for point-in-time recovery as stored (zstd, gzip or plain) and decompressed one segment at a
time by the restore_command the server runs, as PostgreSQL runs it: through /bin/sh in the data directory."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from drflow.engines.postgres.recovery import RESTORE_COMMAND, WAL_DIR_NAME, stage_wal
from drflow.engines.postgres.restore import RestoreError
from drflow.hosts import Host

SEGMENTS = {"000000010000000000000003": "zstd", "000000010000000000000004": "gzip", "000000010000000000000005": None}


def _restore(host: Host, data_dir: Path, name: str) -> subprocess.CompletedProcess[str]:
    command = RESTORE_COMMAND.replace("%f", name).replace("%p", "pg_wal/RECOVERYXLOG")
    return host.run(["/bin/sh", "-c", f"cd {shlex.quote(str(data_dir))} && {command}"], as_db_user=True, check=False)


def test_each_stored_format_is_restored_byte_for_byte_and_a_missing_one_is_not_archived(
    tmp_path: Path, pg_workdir: Path, pg_host: Host
) -> None:
    fetched, data_dir = tmp_path / "fetched", pg_workdir / "data"
    fetched.mkdir()
    pg_host.make_private_dir(data_dir / "pg_wal")
    contents, files = {}, {}
    for name, compression in SEGMENTS.items():
        contents[name] = os.urandom(64 * 1024) + bytes(512 * 1024)  # a switched segment: mostly zeros
        path = fetched / name
        path.write_bytes(contents[name])
        if compression is not None:
            fmt = ["--format=gzip"] if compression == "gzip" else []
            subprocess.run(["zstd", "-q", *fmt, "--rm", str(path)], check=True)
            path = path.with_name(name + (".gz" if compression == "gzip" else ".zst"))
        files[path.name] = path

    staged = stage_wal(files, data_dir, host=pg_host)
    assert staged == data_dir / WAL_DIR_NAME and sorted(p.name for p in staged.iterdir()) == sorted(files)
    assert sum(p.stat().st_size for p in staged.iterdir()) < len(SEGMENTS) * 600 * 1024 // 2  # kept compressed

    for name in SEGMENTS:
        result = _restore(pg_host, data_dir, name)
        assert result.returncode == 0, result.stderr
        assert (data_dir / "pg_wal" / "RECOVERYXLOG").read_bytes() == contents[name]
    (data_dir / "pg_wal" / "RECOVERYXLOG").unlink()
    # The end of the archive, or a timeline history file nobody archived: a plain failure, nothing written.
    missing = _restore(pg_host, data_dir, "00000002.history")
    assert 0 < missing.returncode < 126 and not (data_dir / "pg_wal" / "RECOVERYXLOG").exists()


def test_a_file_not_named_as_its_object_is_refused(tmp_path: Path, pg_host: Host) -> None:
    other = tmp_path / "renamed.zst"
    other.write_bytes(b"x")
    with pytest.raises(RestoreError, match="not named as their objects: 000000010000000000000003.zst"):
        stage_wal({"000000010000000000000003.zst": other}, tmp_path / "data", host=pg_host)
    assert not (tmp_path / "data").exists()
