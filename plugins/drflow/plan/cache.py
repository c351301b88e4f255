"""Compiled plans per spec file content, in memory and on disk: a DAG parse compiles only what changed.

Layout under the cache directory ($DRFLOW_PLAN_CACHE_DIR, default $AIRFLOW_HOME/drflow/plan-cache):

    <build>/<stem>-<path hash>/<sha256 of the file>.pickle   one spec file, compiled (plans, name, slots)
    <build>/names/<spec name>.json                           {"path", "sha256"}: the file whose DAGs are
                                                             dr.<spec name>.…, as the last full parse admitted it

An entry is found by the file's path and the sha256 of its bytes, so a changed file is compiled again,
never served from an older entry. <build> is a hash of everything else a plan depends on: drflow's code
(size and mtime of every module), the Python version, and what the PostgreSQL binaries lookup sees (plans
carry the binaries directory found on the machine: engines/postgres/bindir.py). A new drflow or a machine
with other binaries starts another <build> directory; one nobody used for a week is removed.

Entries are pickles: the directory must be as trusted as the DAGs folder. A file not owned by this user,
or writable by others, is ignored. Every error of the cache is logged and ignored: it never breaks a parse.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import stat
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from drflow.engines.postgres.bindir import SUPPORTED_MAJORS, debian_bin_dir
from drflow.plan.graph import DagPlan
from drflow.spec.diagnostics import Diagnostic
from drflow.spec.last_good import write_atomically
from drflow.spec.slots import SlotClaim

log = logging.getLogger(__name__)

ENV_DIR = "DRFLOW_PLAN_CACHE_DIR"
OFF = "off"
MEMORY_ENTRIES = 4096
UNUSED_BUILD_S = 7 * 24 * 3600
_NAMES = "names"
_PACKAGE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CompiledSpec:
    """One spec file that validated on its own, compiled: what the cross-file checks and the DAGs need."""

    path: Path
    sha256: str
    name: str
    claims: tuple[SlotClaim, ...]
    warnings: tuple[Diagnostic, ...]
    plans: tuple[DagPlan, ...]
    built: bool = True
    """False when a plan builder failed: `plans` is then the file's error DAG, and nothing is cached."""

    def plan(self, dag_id: str) -> DagPlan | None:
        return next((plan for plan in self.plans if plan.dag_id == dag_id), None)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def default_cache() -> PlanCache:
    """$DRFLOW_PLAN_CACHE_DIR (`off`: in memory only), else $AIRFLOW_HOME/drflow/plan-cache."""
    configured = os.environ.get(ENV_DIR)
    if configured and configured.strip().lower() == OFF:
        return PlanCache(None)
    if configured:
        return PlanCache(Path(configured))
    return PlanCache(Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "drflow" / "plan-cache")


@cache
def build_fingerprint() -> str:
    """What a plan depends on besides its spec file (see the module's text), as 16 hex digits."""
    # What find_bin_dir looks at, without running anything: the Debian directories, pg_config and pg_ctl on PATH.
    parts = [sys.version, str(shutil.which("pg_config")), str(shutil.which("pg_ctl"))]
    parts += [str(os.access(debian_bin_dir(major) / "pg_ctl", os.X_OK)) for major in SUPPORTED_MAJORS]
    for root, dirs, files in os.walk(_PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(root, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            parts.append(f"{os.path.relpath(path, _PACKAGE)}:{info.st_size}:{info.st_mtime_ns}")
    return sha256("\n".join(parts).encode())[:16]


# Process-wide, so every parse in one process (tests, `dag.test()` runs) shares it: key -> entry, oldest first.
_MEMORY: OrderedDict[tuple[str, str, str], CompiledSpec] = OrderedDict()


class PlanCache:
    """Compiled spec files by path and content; `directory` None keeps them in memory only."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.hits = 0
        self.misses = 0

    @property
    def build_dir(self) -> Path | None:
        return None if self.directory is None else self.directory / build_fingerprint()

    def get(self, path: Path, digest: str) -> CompiledSpec | None:
        """The compiled entry of `path` whose bytes hash to `digest`, or None."""
        key = (build_fingerprint(), str(path), digest)
        found = _MEMORY.get(key)
        if found is None:
            found = self._read(path, digest)
            if found is not None:
                self._remember(key, found)
        if found is None:
            self.misses += 1
        else:
            _MEMORY.move_to_end(key)
            self.hits += 1
        return found

    def put(self, compiled: CompiledSpec) -> None:
        """Keep `compiled` (one entry per path: older contents of the file are dropped)."""
        if not compiled.built:
            return
        self._remember((build_fingerprint(), str(compiled.path), compiled.sha256), compiled)
        entry = self._entry_dir(compiled.path)
        if entry is None:
            return
        target = entry / f"{compiled.sha256}.pickle"
        try:
            entry.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomically(target, pickle.dumps(compiled, protocol=pickle.HIGHEST_PROTOCOL))
            for old in entry.glob("*.pickle"):
                if old != target:
                    old.unlink(missing_ok=True)
        except (OSError, pickle.PicklingError) as exc:
            log.warning("drflow could not cache the plans of %s in %s: %s", compiled.path, entry, exc)

    def owner(self, name: str) -> tuple[Path, str] | None:
        """The spec file (and its sha256) whose DAGs are dr.<name>.…, as the last full parse admitted it."""
        index = self._index(name)
        if index is None or not index.is_file():
            return None
        try:
            found = json.loads(index.read_text(encoding="utf-8"))
            return Path(found["path"]), str(found["sha256"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("drflow ignores the plan cache's index %s: %s", index, exc)
            return None

    def set_owners(self, owners: Iterable[CompiledSpec]) -> None:
        """Record which file each spec name comes from (files are written only when that changed)."""
        for compiled in owners:
            index = self._index(compiled.name)
            if index is None:
                return
            data = json.dumps({"path": str(compiled.path), "sha256": compiled.sha256}).encode()
            try:
                if index.is_file() and index.read_bytes() == data:
                    continue
                index.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                write_atomically(index, data)
            except OSError as exc:
                log.warning("drflow could not write the plan cache's index %s: %s", index, exc)
                return

    def tidy(self, now: float | None = None) -> None:
        """Mark this build's directory used, and remove other builds' directories unused for a week."""
        build = self.build_dir
        if build is None or self.directory is None or not build.is_dir():
            return
        now = time.time() if now is None else now
        try:
            os.utime(build, (now, now))
            for other in self.directory.iterdir():
                if other != build and other.is_dir() and now - other.stat().st_mtime > UNUSED_BUILD_S:
                    shutil.rmtree(other, ignore_errors=True)
        except OSError as exc:
            log.warning("drflow could not tidy the plan cache in %s: %s", self.directory, exc)

    def _remember(self, key: tuple[str, str, str], compiled: CompiledSpec) -> None:
        _MEMORY[key] = compiled
        while len(_MEMORY) > MEMORY_ENTRIES:
            _MEMORY.popitem(last=False)

    def _read(self, path: Path, digest: str) -> CompiledSpec | None:
        entry = self._entry_dir(path)
        if entry is None:
            return None
        file = entry / f"{digest}.pickle"
        try:
            with open(file, "rb") as stream:
                info = os.fstat(stream.fileno())
                if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                    log.warning("drflow ignores %s: not owned by this user, or writable by others", file)
                    return None
                found = pickle.load(stream)
        except FileNotFoundError:
            return None
        except Exception as exc:  # a truncated or foreign file is a miss, never a broken parse
            log.warning("drflow ignores the plan cache entry %s: %s", file, exc)
            return None
        if not isinstance(found, CompiledSpec) or found.path != path or found.sha256 != digest:
            return None
        return found

    def _entry_dir(self, path: Path) -> Path | None:
        build = self.build_dir
        if build is None:
            return None
        return build / f"{path.stem}-{sha256(str(path.absolute()).encode())[:16]}"

    def _index(self, name: str) -> Path | None:
        build = self.build_dir
        if build is None or not name or "/" in name or name.startswith("."):
            return None
        return build / _NAMES / f"{name}.json"
