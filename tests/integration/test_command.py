"""run_command steps: reviewed scripts of include/commands/ only, no shell, bounded time."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from drflow.actions.command import CommandError, run_reviewed_command
from drflow.operators.command import RunCommandOperator
from tests.plan_inputs import step_params


def _context() -> dict[str, Any]:
    return {
        "dag_run": SimpleNamespace(dag_id="dr.command-test.plan.region-failover", run_id="manual__1"),
        "params": {"reason": "drill; $(touch /tmp/pwned)"},
    }


def _script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body)
    path.chmod(0o755)
    return path


def test_the_example_script_runs_with_its_arguments_and_the_run_in_its_environment() -> None:
    step = {
        "name": "flush-cdn",
        "action": "run_command",
        "command": ["flush-cdn-cache.sh", "--distribution", "E2EXAMPLE", "--path", "/api/*; rm -rf /"],
        "timeout": "30s",
    }
    params = step_params(step, spec_name="command-test")
    result = RunCommandOperator(task_id="flush-cdn", **params).execute(_context())
    assert result["returncode"] == 0
    # Arguments arrive verbatim (no shell): the ';' is part of the path, nothing else ran.
    assert "would invalidate /api/*; rm -rf /" in result["stdout_tail"]
    assert "plan region-failover run manual__1: would flush distribution E2EXAMPLE" in result["stdout_tail"]
    assert not Path("/tmp/pwned").exists()


@pytest.mark.parametrize("script", ["../../plugins/drflow/cli/main.py", "/bin/true", "nope.sh", ""])
def test_paths_outside_the_commands_directory_are_refused(script: str) -> None:
    # Validation refuses such a command; the operator refuses it too (a DAG built from an older check).
    step = {"name": "bad", "action": "run_command", "command": ["flush-cdn-cache.sh"]}
    params = step_params(step, spec_name="command-test", command=[script])
    with pytest.raises(AirflowFailException, match="refused: .*to proceed: put a reviewed, executable script"):
        RunCommandOperator(task_id="bad", **params).execute(_context())


def test_a_symlink_pointing_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    commands = tmp_path / "commands"
    commands.mkdir()
    outside = _script(tmp_path, "outside.sh", "echo escaped\n")
    (commands / "innocent.sh").symlink_to(outside)
    with pytest.raises(CommandError, match="resolves to .*outside.sh, outside") as info:
        run_reviewed_command(["innocent.sh"], timeout_s=5, base=commands)
    assert info.value.refused


def test_failure_and_timeout_report_the_output_tail(tmp_path: Path) -> None:
    _script(tmp_path, "fails.sh", "for i in $(seq 1 40); do echo line-$i; done\necho 'cdn said no' >&2\nexit 3\n")
    with pytest.raises(CommandError, match=r"exited with code 3") as info:
        run_reviewed_command(["fails.sh"], timeout_s=10, base=tmp_path)
    message = str(info.value)
    assert "cdn said no" in message and "line-40" in message and "line-5\n" not in message
    assert not info.value.refused

    _script(tmp_path, "hangs.sh", "echo started\nsleep 30 &\nwait\n")
    started = time.monotonic()
    with pytest.raises(CommandError, match=r"(?s)did not finish within 1s and was stopped.*started"):
        run_reviewed_command(["hangs.sh"], timeout_s=1, base=tmp_path)
    assert time.monotonic() - started < 8


def test_a_script_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain.sh").write_text("echo hi\n")
    with pytest.raises(CommandError, match="not executable; to proceed: `chmod \\+x`"):
        run_reviewed_command(["plain.sh"], timeout_s=5, base=tmp_path)
