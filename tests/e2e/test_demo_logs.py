"""The task logs of `make demo`'s runs (`dag.test()` in one process, `drflow.devtools.dag_runs`) are served by the
api-server of the same Airflow home, as a worker's would be: the UI shows them instead of "Log file not found"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from drflow.devtools.dag_runs import RESULT_PREFIX
from tests.e2e.airflow_stack import airflow_stack
from tests.integration.test_airflow_files import SPEC  # a files component, its backup into a local directory

pytestmark = pytest.mark.slow

DAG_ID = "dr.demo-logs.portal-assets.backup.daily-full"


def test_the_api_server_serves_the_task_logs_of_a_demo_run(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "demo-logs.yaml").write_text(SPEC.format(name="demo-logs", root=tmp_path))
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "logo.svg").write_text("<svg/>")

    with airflow_stack(specs, components=("api-server",)) as stack:
        ran = subprocess.run(
            [sys.executable, "-m", "drflow.devtools.dag_runs", DAG_ID],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        results = [
            json.loads(line[len(RESULT_PREFIX) :]) for line in ran.stdout.splitlines() if line.startswith(RESULT_PREFIX)
        ]
        assert ran.returncode == 0 and [r["state"] for r in results] == ["success"], ran.stdout[-3000:]
        run_id = results[0]["run_id"]

        viewer = stack.client("auditor")  # a read-only user reads them too
        for task_id, expected in (("take_backup", "full backup "), ("verify_backup", "objects verified, 0 problems")):
            path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/1"
            response = viewer.request("GET", path, headers={"Accept": "application/json"})
            assert response.status_code == 200, response.text[:500]
            events = [str(message.get("event", "")) for message in response.json()["content"]]
            assert any(expected in event for event in events), events
            assert not any("not found" in event.lower() or "could not read" in event.lower() for event in events), (
                events
            )
            # one task's log holds only its own lines
            other = "verify_backup" if task_id == "take_backup" else "take_backup"
            assert not any(f"task_id={other}" in event for event in events), events
