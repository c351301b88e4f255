"""Where the PostgreSQL programs (pg_ctl, pg_basebackup, pg_rewind …) of a datastore live.

A datastore's ``bin_dir`` wins. Otherwise, in this order:

1. ``/usr/lib/postgresql/<version>/bin`` when the datastore's major version is known and installed
   there (Debian/Ubuntu layout): programs of another major cannot run that cluster's data directory;
2. what ``pg_config --bindir`` reports;
3. the directory of ``pg_ctl`` on the PATH;
4. the newest ``/usr/lib/postgresql/<N>/bin`` for N in 17..13 (:data:`SUPPORTED_MAJORS`).

With none found, ``/usr/lib/postgresql/<version or 17>/bin``: the first command then fails with a message
that says to set the datastore's ``bin_dir``. The answer is cached per version (one lookup per process).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from drflow import process

SUPPORTED_MAJORS = (17, 16, 15, 14, 13)
"""The PostgreSQL major versions drflow supports, newest first."""
DEBIAN_ROOT = Path("/usr/lib/postgresql")


def debian_bin_dir(major: int, root: Path = DEBIAN_ROOT) -> Path:
    return root / str(major) / "bin"


def _has_pg_ctl(directory: Path) -> bool:
    return os.access(directory / "pg_ctl", os.X_OK)


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        result = process.run([pg_config, "--bindir"], timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = result.stdout.strip()
    return Path(text) if result.returncode == 0 and text else None


def _path_bin_dir() -> Path | None:
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


def candidates(version: int | None, root: Path = DEBIAN_ROOT) -> Iterator[Path]:
    """The directories looked at, in order (see the module's text); lazily, so a hit runs nothing more."""
    if version is not None:
        yield debian_bin_dir(version, root)
    for found in (_pg_config_bindir, _path_bin_dir):
        directory = found()
        if directory is not None:
            yield directory
    for major in SUPPORTED_MAJORS:
        yield debian_bin_dir(major, root)


@lru_cache(maxsize=16)
def find_bin_dir(version: int | None = None, root: Path = DEBIAN_ROOT) -> Path:
    """The PostgreSQL binaries directory for a datastore of major ``version`` without its own ``bin_dir``."""
    for directory in candidates(version, root):
        if _has_pg_ctl(directory):
            return directory
    return debian_bin_dir(version or SUPPORTED_MAJORS[0], root)


def datastore_bin_dir(bin_dir: str | None, version: int | None) -> Path:
    """A datastore's own ``bin_dir`` from the spec, else the binaries of its major found on this machine."""
    return Path(bin_dir) if bin_dir else find_bin_dir(version)


_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


@lru_cache(maxsize=16)
def binaries_major(bin_dir: Path, program: str = "pg_ctl") -> int | None:
    """The major version of the programs in ``bin_dir`` (``pg_ctl --version``); None when it cannot be run."""
    try:
        result = process.run([bin_dir / program, "--version"], timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(result.stdout)
    return int(match.group(1)) if result.returncode == 0 and match else None
