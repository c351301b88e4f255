"""A backup store in a local (or mounted) directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from drflow.store.base import CHUNK_SIZE, BackupStore, MissingKeyError, StoreError, check_key, check_prefix

# Temp files live next to their final name (so os.replace is atomic) and are
# never listed as keys.
TMP_PREFIX = ".drflow-tmp-"


class LocalStore(BackupStore):
    """Objects are files under root; key 'a/b/c' is root/a/b/c.

    Every write goes to a temp file in the destination directory, is fsynced,
    then renamed over the final name, so a crash never leaves a partial object.
    """

    def __init__(self, root: Path, fsync: bool = True) -> None:
        self.root = Path(root).absolute()
        self.fsync = fsync

    def describe(self) -> str:
        return str(self.root)

    def put_file(self, key: str, path: Path) -> None:
        dest = self._path(key)
        try:
            with self._atomic_write(dest) as tmp:
                # copyfile uses sendfile(2) on Linux: no Python loop over the data.
                shutil.copyfile(path, tmp)
        except FileNotFoundError as exc:
            if not Path(path).is_file():
                raise StoreError(f"cannot store {path} as {self.url_for(key)}: the source file does not exist") from exc
            raise self._write_error(key, exc) from exc
        except OSError as exc:
            raise self._write_error(key, exc) from exc

    def adopt_file(self, key: str, path: Path) -> bool:
        """Rename ``path`` in as ``key`` when it is on this store's filesystem: fsynced, then renamed atomically."""
        dest = self._path(key)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if os.stat(path).st_dev != os.stat(dest.parent).st_dev:
                return False
            if self.fsync:
                _fsync_file(Path(path))
            os.replace(path, dest)
            if self.fsync:
                _fsync_dir(dest.parent)
        except OSError as exc:
            raise self._write_error(key, exc) from exc
        return True

    def put_bytes(self, key: str, data: bytes) -> None:
        dest = self._path(key)
        try:
            with self._atomic_write(dest) as tmp:
                tmp.write_bytes(data)
        except OSError as exc:
            raise self._write_error(key, exc) from exc

    def get_file(self, key: str, path: Path) -> None:
        src = self._existing(key)
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
            os.close(fd)
            try:
                shutil.copyfile(src, tmp_name)
                os.replace(tmp_name, path)
            except BaseException:
                _unlink_quietly(Path(tmp_name))
                raise
        except OSError as exc:
            raise StoreError(f"cannot copy {self.url_for(key)} to {path}: {exc}") from exc

    def get_bytes(self, key: str) -> bytes:
        src = self._existing(key)
        try:
            return src.read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read {self.url_for(key)}: {exc}") from exc

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        src = self._existing(key)
        try:
            with open(src, "rb") as f:
                while chunk := f.read(chunk_size):
                    yield chunk
        except OSError as exc:
            raise StoreError(f"cannot read {self.url_for(key)}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str = "") -> list[str]:
        return self._scan(prefix)[0]

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot delete {self.url_for(key)}: {exc}") from exc
        self._remove_empty_dirs({path.parent})
        return True

    def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise StoreError(f"refusing to delete everything in {self.describe()}: an empty prefix was given")
        keys, temps = self._scan(prefix)
        parents: set[Path] = set()
        for path in [self.root / key for key in keys] + temps:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot delete {path} in {self.describe()}: {exc}") from exc
            parents.add(path.parent)
        self._remove_empty_dirs(parents)
        return len(keys)

    def size(self, key: str) -> int:
        return self._existing(key).stat().st_size

    # -- helpers ---------------------------------------------------------

    def _scan(self, prefix: str) -> tuple[list[str], list[Path]]:
        """Keys starting with prefix, and leftover temp files in directories wholly under prefix."""
        check_prefix(prefix)
        dir_part, _, partial = prefix.rpartition("/")
        base = self.root / dir_part if dir_part else self.root
        if not base.is_dir():
            return [], []
        keys: list[str] = []
        temps: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            head = "" if rel == "." else rel + "/"
            if dirpath == str(base) and partial:
                dirnames[:] = [d for d in dirnames if d.startswith(partial)]
            for name in filenames:
                if name.startswith(TMP_PREFIX):
                    if head.startswith(prefix):
                        temps.append(Path(dirpath, name))
                elif (key := head + name).startswith(prefix):
                    keys.append(key)
        return sorted(keys), temps

    def _path(self, key: str) -> Path:
        check_key(key)
        if key.rpartition("/")[2].startswith(TMP_PREFIX):
            raise StoreError(f"invalid store key {key!r}: names starting with {TMP_PREFIX!r} are reserved")
        return self.root / key

    def _existing(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise MissingKeyError(
                f"{self.url_for(key)} does not exist; check the key, or list the backups with `drflow backups list`"
            )
        return path

    @contextlib.contextmanager
    def _atomic_write(self, dest: Path) -> Iterator[Path]:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=dest.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            if self.fsync:
                _fsync_file(tmp)
            os.replace(tmp, dest)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        if self.fsync:
            _fsync_dir(dest.parent)

    def _write_error(self, key: str, exc: OSError) -> StoreError:
        return StoreError(
            f"cannot write {self.url_for(key)}: {exc}; check that the directory is writable and has free space"
        )

    def _remove_empty_dirs(self, dirs: set[Path]) -> None:
        # Deepest first, so a parent is tried after its children.
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            while d != self.root and self.root in d.parents:
                try:
                    d.rmdir()
                except OSError:
                    break
                d = d.parent


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
