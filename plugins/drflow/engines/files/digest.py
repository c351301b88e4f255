"""A digest of a directory tree as a restore must reproduce it: one sha256 over every entry.

Each entry (sorted by path) contributes its kind, path, permission bits, owner ids (only when this
process is root, the only case a restore can set them), and for a regular file its size, mtime in
whole seconds (what GNU tar keeps) and the sha256 of its content; for a symlink its target. Directory
times are left out: extracting into a directory changes them. Hashing releases the GIL, so the digest
can run in a thread beside ``tar``.
"""

from __future__ import annotations

import hashlib
import os
import stat
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


def tree_digest(root: Path) -> TreeDigest:
    """The digest of everything under ``root`` (``root`` itself contributes its mode)."""
    if not root.is_dir():
        raise TreeError(f"{root} is not a directory; give the directory of the tree")
    with_owner = os.geteuid() == 0
    total = hashlib.sha256()
    entries = files = size = 0
    try:
        for rel, full in _walk(str(root)):
            st = os.lstat(full)
            owner = f"{st.st_uid}:{st.st_gid}" if with_owner else "-"
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                line = f"f\t{rel}\t{perm:o}\t{owner}\t{st.st_size}\t{int(st.st_mtime)}\t{file_sha256(full)}"
                files += 1
                size += st.st_size
            elif stat.S_ISLNK(st.st_mode):
                line = f"l\t{rel}\t{owner}\t{os.readlink(full)}"
            elif stat.S_ISDIR(st.st_mode):
                line = f"d\t{rel}\t{perm:o}\t{owner}"
            else:
                line = f"o\t{rel}\t{perm:o}\t{owner}\t{stat.S_IFMT(st.st_mode):o}"
            total.update(line.encode("utf-8", "surrogateescape") + b"\n")
            entries += 1
    except OSError as exc:
        raise TreeError(
            f"cannot read {exc.filename or root}: {exc.strerror}; check that it exists and is readable"
        ) from exc
    return TreeDigest(total.hexdigest(), entries, files, size)


def _walk(root: str) -> list[tuple[str, str]]:
    """(relative path, full path) of root ('.') and everything below it, sorted, symlinks not followed."""
    found = [(".", root)]
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        for name in (*dirnames, *filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            found.append((rel, os.path.join(dirpath, name)))
    found.sort()
    return found
