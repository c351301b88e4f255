"""The last version of each spec file that validated, kept so a broken push never takes its DAGs away.

Layout, one directory per spec file (named after the file's stem and a hash of its absolute path):

    <dir>/<stem>-<path hash>/source         the spec file's absolute path (text)
    <dir>/<stem>-<path hash>/<sha256>.yaml  the spec text that validated, byte for byte

This runs on the DAG-parse hot path: a parse reads a few small files and writes only when a spec
validates with content it has not stored yet (or a stored spec's file was removed). Any error of
the store is logged and ignored: it must never break DAG parsing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ENV_DIR = "DRFLOW_LAST_GOOD_DIR"
_SOURCE = "source"


def default_dir() -> Path:
    """$DRFLOW_LAST_GOOD_DIR, else $AIRFLOW_HOME/drflow/last-good (AIRFLOW_HOME defaults to ~/airflow)."""
    configured = os.environ.get(ENV_DIR)
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "drflow" / "last-good"


@dataclass(frozen=True)
class LastGood:
    """A stored copy: the text that validated and its content hash."""

    text: str
    sha256: str


class LastGoodStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def remember(self, spec_file: Path, data: bytes) -> None:
        """Keep `data` (the text of `spec_file`, which validated) unless it is stored already."""
        digest = hashlib.sha256(data).hexdigest()
        entry = self._entry(spec_file)
        copy = entry / f"{digest}.yaml"
        try:
            if copy.is_file():
                return
            entry.mkdir(parents=True, exist_ok=True)
            write_atomically(entry / _SOURCE, str(spec_file.absolute()).encode())
            write_atomically(copy, data)
            for old in entry.glob("*.yaml"):
                if old != copy:
                    old.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("drflow could not keep the last good copy of %s in %s: %s", spec_file, entry, exc)

    def recall(self, spec_file: Path) -> LastGood | None:
        """The last copy of `spec_file` that validated, or None."""
        entry = self._entry(spec_file)
        try:
            copies = sorted(entry.glob("*.yaml"), key=lambda p: p.stat().st_mtime, reverse=True)
            if not copies:
                return None
            return LastGood(copies[0].read_text(encoding="utf-8"), copies[0].stem)
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("drflow could not read the last good copy of %s in %s: %s", spec_file, entry, exc)
            return None

    def forget_removed(self, directories: list[Path]) -> None:
        """Drop the copies of spec files that were removed from `directories` (which still exist)."""
        watched = {directory.absolute() for directory in directories if directory.is_dir()}
        if not watched or not self.directory.is_dir():
            return
        try:
            for entry in self.directory.iterdir():
                source = entry / _SOURCE
                if not source.is_file():
                    continue
                spec_file = Path(source.read_text(encoding="utf-8").strip())
                if spec_file.parent in watched and not spec_file.exists():
                    shutil.rmtree(entry, ignore_errors=True)
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("drflow could not tidy the last good copies in %s: %s", self.directory, exc)

    def _entry(self, spec_file: Path) -> Path:
        absolute = str(spec_file.absolute())
        key = hashlib.sha256(absolute.encode()).hexdigest()[:16]
        return self.directory / f"{spec_file.stem}-{key}"


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: a reader never sees half a copy."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
