"""Run a reviewed script from include/commands/: argument list, no shell, bounded time.

Only files inside the commands directory run (symlinks resolved first, so a link pointing out of it
is refused). The directory is ``$DRFLOW_COMMANDS_DIR``, else ``include/commands`` of the project.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drflow import process
from drflow.hosts import tail
from drflow.units import human_duration

COMMANDS_DIR_ENV = "DRFLOW_COMMANDS_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
OUTPUT_TAIL_LINES = 20
SPEC_PREFIX = "include/commands/"


class CommandError(RuntimeError):
    """The command was refused, failed or timed out; ``refused`` ones will not run on a retry either."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    returncode: int
    duration_s: float
    stdout: str
    stderr: str

    def to_json(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "returncode": self.returncode,
            "duration_s": round(self.duration_s, 3),
            "stdout_tail": tail(self.stdout),
            "stderr_tail": tail(self.stderr),
        }


def commands_dir() -> Path:
    configured = os.environ.get(COMMANDS_DIR_ENV)
    return Path(configured) if configured else PROJECT_ROOT / "include" / "commands"


def resolve_script(script: str, base: Path | None = None) -> Path:
    """The script's real path; refuses anything outside the commands directory or not executable.

    ``script`` is relative to the commands directory; a leading ``include/commands/`` is accepted too.
    """
    root = (base or commands_dir()).resolve()
    script = script.removeprefix(SPEC_PREFIX)
    fix = f"put a reviewed, executable script in {root} and name it relative to that directory"
    if not script or Path(script).is_absolute():
        raise CommandError(f"refused: command {script!r} is not a path inside {root}; to proceed: {fix}", refused=True)
    path = (root / script).resolve()
    if not path.is_relative_to(root):
        raise CommandError(
            f"refused: command {script!r} resolves to {path}, outside {root}; to proceed: {fix}", refused=True
        )
    if not path.is_file():
        raise CommandError(f"refused: there is no script {path}; to proceed: {fix}", refused=True)
    if not os.access(path, os.X_OK):
        raise CommandError(
            f"refused: {path} is not executable; to proceed: `chmod +x` it (and commit the mode)", refused=True
        )
    return path


def run_reviewed_command(
    command: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    base: Path | None = None,
) -> CommandResult:
    """Run ``[script, *args]``; a non-zero exit or the timeout raises CommandError with the output's tail."""
    if not command:
        raise CommandError("refused: empty command; to proceed: name a script of include/commands/", refused=True)
    path = resolve_script(command[0], base)
    argv = [str(path), *map(str, command[1:])]
    started = time.monotonic()
    try:
        result = process.run(argv, timeout=timeout_s, cwd=path.parent, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as exc:
        raise CommandError(
            f"{' '.join(argv)} did not finish within {human_duration(timeout_s)} and was stopped; to proceed: find out "
            f"why it hangs (output below) or raise the step's timeout, then clear the task\n"
            f"{tail(str(exc.stdout or '') + str(exc.stderr or ''), OUTPUT_TAIL_LINES)}"
        ) from None
    stdout, stderr = result.stdout, result.stderr
    duration = time.monotonic() - started
    if result.returncode != 0:
        raise CommandError(
            f"{' '.join(argv)} exited with code {result.returncode} after {human_duration(duration)}; to proceed: "
            "fix what "
            f"its output says, then clear the task (the script must be safe to run again)\n"
            f"{tail(stdout + stderr, OUTPUT_TAIL_LINES)}"
        )
    return CommandResult(argv=argv, returncode=0, duration_s=duration, stdout=stdout, stderr=stderr)
