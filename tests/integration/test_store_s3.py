"""The BackupStore contract, run against both backends, plus what only S3 has (multipart, prefixes).

S3 here is a real moto server over HTTP, reached through the amazon provider's S3Hook.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from drflow.devtools.sandbox.s3 import is_moto_running, start_moto_server, stop_moto_server
from drflow.store.base import BackupStore, MissingKeyError, StoreError
from drflow.store.factory import open_store
from drflow.store.s3 import S3Store
from tests.fixtures.s3 import S3_TEST_PREFIX, MotoServer, free_port

MiB = 1024 * 1024


def test_bytes_and_files_round_trip(backup_store: BackupStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300_000))
    backup_store.put_file("a/b/file.bin", src)
    backup_store.put_bytes("a/note.txt", b"hello")

    out = tmp_path / "out" / "deep" / "file.bin"
    backup_store.get_file("a/b/file.bin", out)
    assert out.read_bytes() == src.read_bytes()
    assert backup_store.get_bytes("a/note.txt") == b"hello"
    assert b"".join(backup_store.iter_chunks("a/b/file.bin", chunk_size=65536)) == src.read_bytes()
    assert backup_store.size("a/b/file.bin") == 300_000
    assert backup_store.exists("a/note.txt")
    assert not backup_store.exists("a/nope.txt")
    assert [p.name for p in out.parent.iterdir()] == ["file.bin"]  # no temp file left behind

    backup_store.put_bytes("a/note.txt", b"replaced")
    assert backup_store.get_bytes("a/note.txt") == b"replaced"


def test_missing_keys_raise_naming_the_location(backup_store: BackupStore, tmp_path: Path) -> None:
    for call in (
        lambda: backup_store.get_bytes("x/missing"),
        lambda: backup_store.size("x/missing"),
        lambda: list(backup_store.iter_chunks("x/missing")),
        lambda: backup_store.get_file("x/missing", tmp_path / "dl" / "f"),
    ):
        with pytest.raises(MissingKeyError, match="x/missing") as exc_info:
            call()
        assert backup_store.describe() in str(exc_info.value)
    dl = tmp_path / "dl"
    assert not dl.exists() or list(dl.iterdir()) == []  # no partial or temp file


def test_list_keys_is_a_sorted_string_prefix_match(backup_store: BackupStore) -> None:
    for key in ["s/b/2", "s/b/1", "s/bc/1", "s/c", "t/x"]:
        backup_store.put_bytes(key, key.encode())
    assert backup_store.list_keys("s/b/") == ["s/b/1", "s/b/2"]
    assert backup_store.list_keys("s/b") == ["s/b/1", "s/b/2", "s/bc/1"]
    assert backup_store.list_keys("s/") == ["s/b/1", "s/b/2", "s/bc/1", "s/c"]
    assert backup_store.list_keys() == ["s/b/1", "s/b/2", "s/bc/1", "s/c", "t/x"]
    assert backup_store.list_keys("nothing/") == []


def test_delete_and_delete_prefix(backup_store: BackupStore) -> None:
    for key in ["d/1/a", "d/1/b", "d/10/a", "d/2/a"]:
        backup_store.put_bytes(key, b"x")
    assert backup_store.delete_prefix("d/1/") == 2
    assert backup_store.list_keys() == ["d/10/a", "d/2/a"]
    assert backup_store.delete("d/2/a") is True
    assert backup_store.delete("d/2/a") is False
    assert backup_store.delete_prefix("d/none/") == 0
    with pytest.raises(StoreError, match="empty prefix"):
        backup_store.delete_prefix("")
    assert backup_store.list_keys() == ["d/10/a"]


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "..", "a/", "a\\b"])
def test_invalid_keys_are_refused(backup_store: BackupStore, key: str) -> None:
    with pytest.raises(StoreError, match="invalid store key"):
        backup_store.put_bytes(key, b"x")


def test_open_store_builds_both_kinds_from_targets(
    local_target: dict[str, Any], s3_target: dict[str, Any], tmp_path: Path
) -> None:
    for target in (local_target, s3_target):
        store = open_store({**target, "retention_days": 7, "ignored": True})
        store.put_bytes("k", target["type"].encode())
        assert store.get_bytes("k") == target["type"].encode()
    assert open_store(s3_target).describe() == f"s3://{s3_target['bucket']}/{S3_TEST_PREFIX}"
    assert open_store(local_target).describe() == local_target["path"]


def test_s3_big_file_goes_up_in_parts_and_comes_back_intact(s3_store: S3Store, s3_conn_id: str, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(20 * MiB))
    s3_store.put_file("big/big.bin", src)

    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=f"{S3_TEST_PREFIX}/big/big.bin")
    # A multipart upload's ETag is "<md5 of part md5s>-<part count>": 20 MiB in 16 MiB parts.
    assert head["ETag"].strip('"').endswith("-2")
    assert s3_store.size("big/big.bin") == 20 * MiB

    out = tmp_path / "back.bin"
    s3_store.get_file("big/big.bin", out)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_s3_prefixes_isolate_stores_in_one_bucket(s3_bucket: str, s3_conn_id: str) -> None:
    one = S3Store(s3_bucket, prefix="one", aws_conn_id=s3_conn_id)
    two = S3Store(s3_bucket, prefix="/two/", aws_conn_id=s3_conn_id)
    root = S3Store(s3_bucket, aws_conn_id=s3_conn_id)
    one.put_bytes("k", b"1")
    two.put_bytes("k", b"2")
    assert one.list_keys() == ["k"]
    assert two.get_bytes("k") == b"2"
    assert root.list_keys() == ["one/k", "two/k"]
    assert two.describe() == f"s3://{s3_bucket}/two"
    assert one.delete_prefix("k") == 1
    assert root.list_keys() == ["two/k"]


def test_s3_missing_bucket_is_a_clear_store_error(s3_conn_id: str, tmp_path: Path) -> None:
    store = S3Store("drflow-no-such-bucket", aws_conn_id=s3_conn_id)
    with pytest.raises(StoreError, match="bucket 'drflow-no-such-bucket' does not exist"):
        store.put_bytes("k", b"x")
    src = tmp_path / "f"
    src.write_bytes(b"x")
    with pytest.raises(StoreError, match="drflow-no-such-bucket"):
        store.put_file("k", src)
    with pytest.raises(StoreError, match="does not exist"):
        store.list_keys()


def test_moto_server_starts_answers_and_stops(moto_server: MotoServer, tmp_path: Path) -> None:
    assert is_moto_running(moto_server.port)
    port = free_port()
    assert not is_moto_running(port)
    pid = start_moto_server(port, tmp_path / "moto.log")
    try:
        assert is_moto_running(port)
        with pytest.raises(RuntimeError, match="already answers"):
            start_moto_server(port, tmp_path / "moto2.log")
    finally:
        stop_moto_server(pid)
    assert not is_moto_running(port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
