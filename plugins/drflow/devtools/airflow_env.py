"""Environment of a local Airflow (SQLite metadata) for the demo, `make airflow` and the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def local_airflow_env(home: Path, *, specs_dir: Path | None = None, port: int = 8080) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__API__HOST": "127.0.0.1",  # loopback only: a local UI, not a service for the network
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # One secret shared by every component of this local Airflow (see shared notes); not for production.
        "AIRFLOW__API_AUTH__JWT_SECRET": "drflow-local-airflow-only",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "DRFLOW_SPECS_DIR": str(specs_dir or PROJECT_ROOT / "plan_specs"),
    }


def airflow_command(args: list[str], env: Mapping[str, str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `airflow` CLI of this interpreter's environment with env added to ours."""
    airflow = Path(sys.executable).with_name("airflow")
    return subprocess.run([str(airflow), *args], env={**os.environ, **env}, text=True, capture_output=True, check=check)


def migrate(env: Mapping[str, str]) -> None:
    if not (Path(env["AIRFLOW_HOME"]) / "airflow.db").exists():
        airflow_command(["db", "migrate"], env)
