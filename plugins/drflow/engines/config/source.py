"""Read a configuration source and hash its content, the same way in the trigger and in the backup.

A snapshot's hash is the sha256 of a canonical listing (one ``<sha256 of the file> <mode> <path>`` line
per regular file, sorted by path), so it changes when a file is added, removed, renamed, changed or has
its mode changed, and never because of timestamps. An HTTP source is one file, ``config`` by default.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drflow.spec.config import ConfigSource

HTTP_FILE_NAME = "config"


class ConfigSourceError(RuntimeError):
    """The source cannot be read; the message says which source, why and what to do."""


@dataclass(frozen=True)
class ConfigFile:
    path: str
    """Relative, '/'-separated."""
    data: bytes
    mode: int = 0o644

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class ConfigSnapshot:
    """The content of a configuration source at one moment."""

    files: tuple[ConfigFile, ...]

    @property
    def sha256(self) -> str:
        return snapshot_sha256((f.path, f.mode, f.sha256) for f in self.files)

    @property
    def size(self) -> int:
        return sum(len(f.data) for f in self.files)


def snapshot_sha256(entries: Iterable[tuple[str, int, str]]) -> str:
    """The hash of a snapshot from its ``(path, mode, sha256 of the content)`` entries."""
    lines = "".join(f"{sha} {mode:o} {path}\n" for path, mode, sha in sorted(entries))
    return hashlib.sha256(lines.encode()).hexdigest()


def read_source(params: Mapping[str, Any]) -> ConfigSnapshot:
    """Read the source a plan wrote as ``ConfigSource.to_params()`` (what the trigger holds)."""
    return read_config(ConfigSource.from_params(params))


def read_config(source: ConfigSource) -> ConfigSnapshot:
    if source.kind == "directory":
        if not source.path:
            raise ConfigSourceError("config source of type directory has no path; set config.path in the spec")
        return read_directory(Path(source.path))
    return ConfigSnapshot((ConfigFile(HTTP_FILE_NAME, fetch_http(source)),))


def read_directory(root: Path) -> ConfigSnapshot:
    """Every regular file under root (symlinks to files are read through; other kinds are skipped)."""
    if not root.is_dir():
        raise ConfigSourceError(
            f"config directory {root} does not exist or is not a directory; create it or correct config.path "
            "in the spec"
        )
    files: list[ConfigFile] = []
    try:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                info = full.stat()
                if not stat.S_ISREG(info.st_mode):
                    continue
                rel = full.relative_to(root).as_posix()
                files.append(ConfigFile(rel, full.read_bytes(), stat.S_IMODE(info.st_mode)))
    except OSError as exc:
        raise ConfigSourceError(
            f"cannot read config directory {root}: {exc}; give the worker read access to it"
        ) from exc
    return ConfigSnapshot(tuple(files))


def fetch_http(source: ConfigSource) -> bytes:
    """GET the endpoint of the source's Airflow HTTP connection; the body is the running config."""
    import requests

    from drflow.connections import http_base

    if not source.conn_id:
        raise ConfigSourceError("config source of type http has no conn_id; set config.conn_id in the spec")
    base = http_base(source.conn_id)
    url = base.join("/" + source.endpoint.lstrip("/"))
    try:
        response = requests.get(url, auth=base.auth, headers=base.headers, timeout=source.timeout_s)
    except requests.RequestException as exc:
        raise ConfigSourceError(
            f"cannot read the running config from {url} (connection {source.conn_id}): {exc}; check the service "
            "is up and the connection's host and port"
        ) from exc
    if response.status_code != 200:
        raise ConfigSourceError(
            f"{url} (connection {source.conn_id}) answered HTTP {response.status_code}; the config endpoint must "
            "answer 200 with the running config: check config.endpoint and the connection's credentials"
        )
    return response.content
