"""Check-only twin of `run_command`: is the script present, runnable and the reviewed one? Runs nothing.

Reviewed means: inside the commands directory (symlinks resolved), executable, writable by its owner only
(a script anyone may change is not the one that was reviewed), and, when the directory is a git checkout,
tracked and unchanged against the commit checked out (`git status` is read, nothing is written).
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Any

from drflow import process
from drflow.actions.command import CommandError, resolve_script


def command_ready(command: list[str], *, base: Path | None = None) -> dict[str, Any]:
    if not command:
        return {"ok": False, "detail": "the step names no command"}
    try:
        path = resolve_script(command[0], base)
    except CommandError as exc:
        return {"ok": False, "detail": str(exc)}
    mode = path.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return {
            "ok": False,
            "detail": f"{path} is writable by its group or by anyone (mode {stat.filemode(mode)}), so it may not be "
            f"the script that was reviewed: `chmod go-w {path}`",
        }
    git = _git_state(path)
    if git:
        return {"ok": False, "detail": git, "path": str(path)}
    return {
        "ok": True,
        "detail": f"{path} present, executable, writable by its owner only, unchanged",
        "path": str(path),
    }


def _git_state(path: Path) -> str:
    """Why the script is not the committed one, or an empty string (also when there is no git checkout)."""
    try:
        inside = process.run(["git", "-C", str(path.parent), "rev-parse", "--is-inside-work-tree"], timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return ""
    tracked = process.run(["git", "-C", str(path.parent), "ls-files", "--error-unmatch", path.name], timeout=30)
    if tracked.returncode != 0:
        return f"{path} is not tracked in git: nobody reviewed it; commit it through a review first"
    status = process.run(["git", "-C", str(path.parent), "status", "--porcelain", "--", path.name], timeout=30)
    if status.stdout.strip():
        return f"{path} has changes not committed (git status: {status.stdout.strip()}): they were not reviewed"
    return ""
