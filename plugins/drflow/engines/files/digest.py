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

from drflow.hosts import Host

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
    return _digest(lines, files, size)


def _digest(lines: list[str], files: int, size: int) -> TreeDigest:
    lines.sort()
    total = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape"))
    return TreeDigest(total.hexdigest(), len(lines), files, size)


# find's fields per entry, NUL-separated (any byte but NUL may be in a name): type, relative path, permission
# bits, owner, size, mtime, symlink target.
_FIND_FORMAT = "%y\\0%P\\0%m\\0%U:%G\\0%s\\0%T@\\0%l\\0"
_FIND_FIELDS = 7
_OTHER_KINDS = {"p": stat.S_IFIFO, "c": stat.S_IFCHR, "b": stat.S_IFBLK, "s": stat.S_IFSOCK, "D": 0o150000}


def host_tree_digest(host: Host, root: Path, listing: Path, *, timeout: float | None = None) -> TreeDigest:
    """:func:`tree_digest` of a tree on ``host`` (over SSH), from a ``find -printf`` listing run there.

    The listing is streamed into the worker's file ``listing`` (removed afterwards). The digest equals
    what :func:`tree_digest` computes over the same tree on this worker (owners included when the
    worker runs as root, which is when a restore here reproduces them).
    """
    with_owner = os.geteuid() == 0
    argv = ["find", str(root), "-printf", _FIND_FORMAT]
    result = host.run_to_file(argv, listing, timeout=timeout)
    if result.returncode != 0:
        raise TreeError(
            f"cannot list {root} on {host.describe()} (exit code {result.returncode}): {result.stderr.strip()[-500:]}; "
            "check that the directory exists and the SSH login can read it"
        )
    lines: list[str] = []
    files = size = 0
    with open(listing, "rb") as handle:
        fields = handle.read().split(b"\0")
    listing.unlink(missing_ok=True)
    for at in range(0, len(fields) - 1, _FIND_FIELDS):
        kind, rel_b, mode, owner_ids, length, mtime, target = fields[at : at + _FIND_FIELDS]
        rel = rel_b.decode("utf-8", "surrogateescape") or "."
        owner = owner_ids.decode() if with_owner else "-"
        perm = mode.decode()
        if kind == b"f":
            lines.append(f"f\t{rel}\t{perm}\t{owner}\t{int(length)}\t{int(float(mtime))}")
            files += 1
            size += int(length)
        elif kind == b"l":
            lines.append(f"l\t{rel}\t{owner}\t{target.decode('utf-8', 'surrogateescape')}")
        elif kind == b"d":
            lines.append(f"d\t{rel}\t{perm}\t{owner}")
        else:
            lines.append(f"o\t{rel}\t{perm}\t{owner}\t{_OTHER_KINDS.get(kind.decode(), 0):o}")
    return _digest(lines, files, size)


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
