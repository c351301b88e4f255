"""The one-pass file backup path: tar's output hashed while written, a staged file renamed into a local store."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from drflow import process
from drflow.store.catalog import Catalog, CatalogError
from drflow.store.local import LocalStore
from drflow.store.manifest import StoredObject


def test_run_to_file_writes_and_hashes_the_output_in_one_pass(tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    # 3 MiB and a bit, so it spans several reads.
    got = process.run_to_file(["head", "-c", str(3 * 1024 * 1024 + 17), "/dev/urandom"], dest, timeout=30)
    data = dest.read_bytes()
    assert got.returncode == 0 and got.size == len(data) == 3 * 1024 * 1024 + 17
    assert got.sha256 == hashlib.sha256(data).hexdigest()


def test_run_to_file_returns_the_exit_code_and_stderr(tmp_path: Path) -> None:
    got = process.run_to_file(["sh", "-c", "printf out; echo why >&2; exit 3"], tmp_path / "o", timeout=30)
    assert (got.returncode, got.stderr.strip(), got.size) == (3, "why", 3)


def test_run_to_file_timeout_kills_the_group_and_leaves_no_file(tmp_path: Path) -> None:
    dest = tmp_path / "o"
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        # The grandchild keeps stdout open: only killing the whole group ends the read.
        process.run_to_file(["sh", "-c", "printf x; sleep 60 & wait"], dest, timeout=1)
    assert time.monotonic() - started < 15
    assert not dest.exists()


def test_a_known_object_moved_into_a_local_store_is_renamed_not_copied(tmp_path: Path) -> None:
    catalog = Catalog(LocalStore(tmp_path / "store"), "s")
    staged = tmp_path / "staged.bin"
    staged.write_bytes(b"archive bytes" * 1000)
    inode = staged.stat().st_ino
    known = StoredObject(name="tree.tar.zst", size=13000, sha256=hashlib.sha256(b"archive bytes" * 1000).hexdigest())

    stored = catalog.put_object("c", "b1", "tree.tar.zst", staged, known=known, move=True)

    assert stored == known and not staged.exists()
    key_path = tmp_path / "store" / catalog.object_key("c", "b1", "tree.tar.zst")
    assert key_path.stat().st_ino == inode  # the same file: no second write of the data
    assert os.listdir(key_path.parent) == ["tree.tar.zst"]  # no temp file left


def test_a_known_size_that_does_not_match_the_file_is_refused(tmp_path: Path) -> None:
    catalog = Catalog(LocalStore(tmp_path / "store"), "s")
    staged = tmp_path / "staged.bin"
    staged.write_bytes(b"short")
    known = StoredObject(name="a", size=99, sha256="0" * 64)
    with pytest.raises(CatalogError, match="99 were written"):
        catalog.put_object("c", "b1", "a", staged, known=known, move=True)
    assert staged.read_bytes() == b"short"
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("a"))


def test_a_file_on_another_filesystem_is_not_adopted_and_stays(tmp_path: Path) -> None:
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second filesystem (/dev/shm)")
    store = LocalStore(tmp_path / "store")
    staged = Path("/dev/shm") / f"drflow-test-{os.getpid()}"
    staged.write_bytes(b"x" * 100)
    try:
        assert store.adopt_file("k/obj", staged) is False
        assert staged.exists()
    finally:
        staged.unlink()
