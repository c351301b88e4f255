"""What an ops person reads from the CLI when a connection is missing or a name is wrong: a clear error and exit 1.

The example spec's S3 and PostgreSQL connections are left undefined (no sandbox), so every store read and
every connection lookup fails for real, the way it does on a laptop without `eval "$(drflow sandbox up)"`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drflow.cli.main import app

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SPEC = str(PROJECT_ROOT / "plan_specs" / "api-marketplace.yaml")


@pytest.fixture(autouse=True)
def _no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith(("AIRFLOW_CONN_", "AIRFLOW__SECRETS__"))]:
        monkeypatch.delenv(name)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_backups_list_with_no_readable_target_says_so_not_that_there_are_no_backups() -> None:
    code, _, stderr = _run("backups", "list", "--spec", SPEC)
    assert code == 1
    assert "Airflow connection 'drflow_s3' is not defined" in stderr
    assert "no storage target could be read" in stderr and "run the backup DAGs first" not in stderr


def test_backups_list_json_with_no_readable_target_fails_rather_than_printing_an_empty_list() -> None:
    code, stdout, stderr = _run("backups", "list", "--spec", SPEC, "--json")
    assert code == 1 and "[]" not in stdout
    assert "no storage target could be read" in stderr


@pytest.mark.parametrize("command", [["backups", "list"], ["restore", "--component", "user-database", "--to", "x"]])
def test_an_unknown_target_lists_the_known_ones_by_name(command: list[str]) -> None:
    code, _, stderr = _run(*command, "--spec", SPEC, "--target", "s3-third")
    assert code == 1
    assert "no storage target 's3-third'" in stderr and "known: s3-primary, s3-secondary" in stderr


def test_compliance_report_with_unreadable_targets_is_written_but_exits_1_naming_them(tmp_path: Path) -> None:
    report = tmp_path / "compliance.md"
    code, _, stderr = _run("compliance-report", "--spec", SPEC, "-o", str(report))
    assert code == 1
    assert "Unreadable targets: s3-primary, s3-secondary." in report.read_text()
    assert "storage targets s3-primary, s3-secondary could not be read" in stderr
    # Each cause once, not once per component.
    assert stderr.count("storage target s3-primary could not be read, so its copies are not counted") == 1


def test_a_missing_postgres_connection_is_said_once_with_what_to_give_instead() -> None:
    code, _, stderr = _run(
        "restore-table", "--spec", SPEC, "--component", "user-database", "--table", "accounts", "--conn-id", "nope"
    )
    assert code == 1
    text = " ".join(stderr.split())
    assert text.count("AIRFLOW_CONN_NOPE") == 1 and "give the target as --dsn" in text
    assert "cannot read Airflow connection 'nope': Airflow connection 'nope'" not in text

    code, _, stderr = _run("slots", "list", "--spec", SPEC)
    text = " ".join(stderr.split())
    assert code == 1 and text.count("AIRFLOW_CONN_DRFLOW_PG_PRIMARY") == 1
    assert "command line" not in text  # slots list takes no connection values


def test_plan_of_a_path_that_does_not_exist_says_so(tmp_path: Path) -> None:
    code, stdout, stderr = _run("plan", str(tmp_path / "nope.yaml"))
    assert code == 1 and "spec-error" not in stdout
    assert "nope.yaml: no such file or directory" in stderr


def test_incident_report_with_an_unreadable_store_still_asks_airflow_and_says_both() -> None:
    code, _, stderr = _run("incident-report", "--run", "manual__1", "--spec", SPEC)
    text = " ".join(stderr.split())
    assert code == 1
    # Each target on its own, each once (however many plans and components use it).
    for target in ("s3-primary", "s3-secondary"):
        assert text.count(f"note: the recovery record could not be read from storage target {target}") == 1
    assert "'drflow_s3'" in text
    assert "note: Airflow's API was not read" in text  # it went on to the second source
    assert "could not be read, see above" in text


def test_simulate_names_a_node_it_cannot_address_once_not_once_per_component_on_its_cluster() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "drflow.cli", "simulate", "--spec", SPEC, "--plan", "region-failover"],
        env={k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__SECRETS__"))},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    text = " ".join((result.stdout + result.stderr).split())
    # Six components share the cluster's two nodes: each node's missing connection is said once.
    assert text.count("node primary cannot be addressed") == 1, text[:2000]
    assert text.count("node replica-1 cannot be addressed") == 1
    assert "simulation of region-failover (infrastructure-failure): FAILED" in text
