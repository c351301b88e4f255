"""The worker's scratch directory: staging of backups and drill instances. Never shared between tasks."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_WORK_DIR = "/var/tmp/drflow"


def work_root(configured: str | None = None) -> Path:
    root = Path(configured or os.environ.get("DRFLOW_WORK_DIR") or DEFAULT_WORK_DIR)
    root.mkdir(parents=True, exist_ok=True)
    # Scratch PostgreSQL instances run as the postgres user, which must be able to traverse the root.
    if os.geteuid() == 0:
        root.chmod(0o755)
    return root


@contextmanager
def scratch_dir(configured: str | None, purpose: str) -> Iterator[Path]:
    """A fresh directory under the work root, removed afterwards whatever happens."""
    path = work_root(configured) / f"{purpose}-{uuid.uuid4().hex[:12]}"
    path.mkdir(mode=0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
