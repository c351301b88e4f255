"""A digest of a directory tree as a restore must reproduce it: one sha256 over every entry's metadata.

Each entry (sorted by path) contributes its kind, path, permission bits, owner ids (only when this
process is root, the only case a restore can set them), and for a regular file its size and mtime in
whole seconds (what GNU tar keeps); for a symlink its target. Directory times are left out: extracting
into a directory changes them. File contents are not read: they are covered by the sha256 of every
stored object and zstd's frame checksums, and reading the whole tree again would double a backup's
I/O (an incremental backup would cost as much as a full). ``content=True`` adds each file's sha256,
for tests and audits that want it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_READ = 1024 * 1024


class TreeError(RuntimeError):
    """A tree cannot be read or written; the message says what to do."""


@dataclass(frozen=True)
class TreeDigest:
    sha256: str
    entries: int
    files: int
    bytes: int


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(_READ):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(root: Path, *, content: bool = False) -> TreeDigest:
    """The digest of everything under ``root`` (``root`` itself contributes its mode)."""
    if not root.is_dir():
        raise TreeError(f"{root} is not a directory; give the directory of the tree")
    with_owner = os.geteuid() == 0
    lines: list[str] = []
    files = size = 0
    try:
        st = os.lstat(root)
        lines.append(f"d\t.\t{stat.S_IMODE(st.st_mode):o}\t{_owner(st, with_owner)}")
        for rel, entry in _walk(str(root), ""):
            st = entry.stat(follow_symlinks=False)
            owner = _owner(st, with_owner)
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                tail = f"\t{file_sha256(entry.path)}" if content else ""
                lines.append(f"f\t{rel}\t{perm:o}\t{owner}\t{st.st_size}\t{int(st.st_mtime)}{tail}")
                files += 1
                size += st.st_size
            elif stat.S_ISLNK(st.st_mode):
                lines.append(f"l\t{rel}\t{owner}\t{os.readlink(entry.path)}")
            elif stat.S_ISDIR(st.st_mode):
                lines.append(f"d\t{rel}\t{perm:o}\t{owner}")
            else:
                lines.append(f"o\t{rel}\t{perm:o}\t{owner}\t{stat.S_IFMT(st.st_mode):o}")
    except OSError as exc:
        raise TreeError(
            f"cannot read {exc.filename or root}: {exc.strerror}; check that it exists and is readable"
        ) from exc
    lines.sort()
    total = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape"))
    return TreeDigest(total.hexdigest(), len(lines), files, size)


def _owner(st: os.stat_result, with_owner: bool) -> str:
    return f"{st.st_uid}:{st.st_gid}" if with_owner else "-"


def _walk(path: str, rel_dir: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(relative path, entry) of everything below ``path``, symlinks not followed."""
    with os.scandir(path) as entries:
        children = list(entries)
    for entry in children:
        rel = f"{rel_dir}{entry.name}"
        yield rel, entry
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path, rel + "/")
