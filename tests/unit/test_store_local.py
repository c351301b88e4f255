"""LocalStore specifics: atomic writes, temp files, directory housekeeping; the store factory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drflow.store import local as local_module
from drflow.store.base import StoreError
from drflow.store.factory import open_store
from drflow.store.local import TMP_PREFIX, LocalStore


def test_a_failed_write_leaves_the_previous_object_and_no_temp_file(
    local_store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_store.put_bytes("b/obj", b"old content")
    src = tmp_path / "src"
    src.write_bytes(b"new content that will not arrive")

    def copy_half_then_fail(source: Path, dest: Path) -> None:
        Path(dest).write_bytes(Path(source).read_bytes()[:5])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local_module.shutil, "copyfile", copy_half_then_fail)
    with pytest.raises(StoreError, match="No space left on device"):
        local_store.put_file("b/obj", src)

    assert local_store.get_bytes("b/obj") == b"old content"
    assert os.listdir(local_store.root / "b") == ["obj"]


def test_temp_files_are_never_keys_and_delete_prefix_sweeps_them(local_store: LocalStore) -> None:
    local_store.put_bytes("spec/c/backups/1/base.tar", b"x")
    stray = local_store.root / "spec/c/backups/1" / f"{TMP_PREFIX}crashed"
    stray.write_bytes(b"half")
    assert local_store.list_keys("spec/") == ["spec/c/backups/1/base.tar"]
    with pytest.raises(StoreError, match="reserved"):
        local_store.put_bytes(f"spec/{TMP_PREFIX}x", b"x")

    assert local_store.delete_prefix("spec/c/backups/1/") == 1
    assert not (local_store.root / "spec").exists()  # emptied directories go too
    assert local_store.root.is_dir()


def test_delete_prefix_keeps_siblings_and_their_directories(local_store: LocalStore) -> None:
    for key in ["p/a/1", "p/ab/1", "p/b/1"]:
        local_store.put_bytes(key, b"x")
    assert local_store.delete_prefix("p/a/") == 1
    assert sorted(os.listdir(local_store.root / "p")) == ["ab", "b"]


def test_put_file_copies_a_big_file_at_copy_speed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store", fsync=False)
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1024 * 1024))
    started = time.perf_counter()
    shutil.copyfile(src, tmp_path / "baseline.bin")
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    store.put_file("big/big.bin", src)
    elapsed = time.perf_counter() - started
    assert store.size("big/big.bin") == 64 * 1024 * 1024
    # Generous bound: the machine is shared and noisy; a Python copy loop would be far slower.
    assert elapsed < max(10 * baseline, 1.0), (elapsed, baseline)


def test_put_file_of_a_missing_source_says_so(local_store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="source file does not exist"):
        local_store.put_file("k", tmp_path / "absent")
    assert local_store.list_keys() == []


def test_open_store_rejects_bad_targets() -> None:
    with pytest.raises(StoreError, match="relative"):
        open_store({"name": "t", "type": "local", "path": "backups"})
    with pytest.raises(StoreError, match="unknown type 'gcs'"):
        open_store({"name": "t", "type": "gcs"})
    with pytest.raises(StoreError, match="needs a 'bucket'"):
        open_store({"name": "t", "type": "s3", "conn_id": "aws"})


def test_store_modules_import_without_airflow_or_boto() -> None:
    # DAG files import these; parsing must stay cheap (the provider loads only on first S3 call).
    code = (
        "import sys, drflow.store.factory, drflow.store.s3, drflow.store.catalog, drflow.devtools.sandbox.s3\n"
        "heavy = [m for m in ('airflow', 'boto3', 'botocore') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
