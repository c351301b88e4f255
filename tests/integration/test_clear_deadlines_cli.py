"""`airflow tasks clear` of a run with a queued-at deadline, on Airflow 3.3's CLI and metadata database.

The CLI loads drflow's plugin, which replaces the clear's broken deadline step (apache/airflow#70368,
`dashboard/airflow_fixes.py`). Two DAGs, both with a queued-at deadline: a drflow recovery plan (its RTO
deadline keeps its time) and a plain DAG (its deadline moves to the new queued_at + its interval, as Airflow
means it to). With `DRFLOW_AIRFLOW_FIXES=off` the same clear fails with Airflow's TypeError. No scheduler:
`airflow dags trigger` creates the run, its task instances and its deadline rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drflow.devtools.airflow_env import airflow_command, local_airflow_env

pytestmark = pytest.mark.slow  # eight runs of the airflow CLI: about 25 s idle

PLAN_DAG = "dr.cleared.plan.retry-me"
PLAIN_DAG = "plain_with_deadline"
SPEC = """\
version: 1
metadata: {name: cleared, owner: test-team}
regions:
  - {name: us-east-1, role: primary}
storage:
  - {name: local-store, type: local, path: STORE, region: us-east-1}
reports:
  rpo_compliance: {enabled: false}
components:
  - {name: docs, criticality: low, rto: 2h, rpo: 1d}
recovery_plans:
  - name: retry-me
    scenario: human-error
    status: approved
    components: [docs]
    approval: {approvers: [bob], four_eyes: false, timeout: 10m}
    steps:
      - {name: check, type: manual, assignees: [bob], instructions: look, timeout: 10m}
"""
DAG_FILES = {
    # The one-line DAG file of README's "Add drflow to your Airflow".
    "drflow_specs.py": "from drflow.render.airflow import render_dag_file\n"
    "globals().update(render_dag_file([SPECS]))\n",
    "plain.py": """\
from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

with DAG(
    "plain_with_deadline",
    schedule=None,
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=45),
        callback=AsyncCallback("airflow.providers.standard.notifications.hitl.HITLNotifier"),
    ),
):
    EmptyOperator(task_id="work")
""",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("clear-deadlines")
    (root / "specs").mkdir()
    (root / "specs" / "cleared.yaml").write_text(SPEC.replace("STORE", str(root / "store")))
    (root / "dags").mkdir()
    for name, text in DAG_FILES.items():
        (root / "dags" / name).write_text(text.replace("SPECS", repr(str(root / "specs"))))
    environment = {
        **local_airflow_env(root / "airflow", specs_dir=root / "specs"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
    }
    airflow_command(["db", "migrate"], environment)
    airflow_command(["dags", "reserialize"], environment)
    yield environment


def _deadline(env: dict[str, str], dag_id: str) -> tuple[datetime, datetime]:
    """(deadline time, the run's queued_at) of the DAG's only run."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as db:
        rows = db.execute(
            "SELECT d.deadline_time, r.queued_at FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id "
            "WHERE r.dag_id = ? AND NOT d.missed",
            (dag_id,),
        ).fetchall()
    [(deadline_time, queued_at)] = rows
    return datetime.fromisoformat(deadline_time).replace(tzinfo=UTC), datetime.fromisoformat(queued_at).replace(
        tzinfo=UTC
    )


def _clear(env: dict[str, str], dag_id: str, **extra: str) -> tuple[int, str]:
    done = airflow_command(["tasks", "clear", dag_id, "--yes"], {**env, **extra}, check=False)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(("dag_id", "interval"), [(PLAN_DAG, timedelta(hours=2)), (PLAIN_DAG, timedelta(minutes=45))])
def test_the_cli_clears_a_run_with_a_queued_at_deadline(env: dict[str, str], dag_id: str, interval: timedelta) -> None:
    airflow_command(["dags", "trigger", dag_id, "--conf", '{"reason": "cli clear"}'], env)
    deadline_time, queued_at = _deadline(env, dag_id)
    assert deadline_time == queued_at + interval

    code, output = _clear(env, dag_id, DRFLOW_AIRFLOW_FIXES="off")
    assert code != 0 and "unsupported type for timedelta seconds component: dict" in output  # Airflow's bug
    assert _deadline(env, dag_id) == (deadline_time, queued_at)

    code, output = _clear(env, dag_id)
    assert code == 0, output[-3000:]
    assert "apache/airflow#70368" in output  # the plugin says which bug it works around
    new_deadline, requeued_at = _deadline(env, dag_id)
    assert requeued_at > queued_at
    if dag_id == PLAN_DAG:
        assert new_deadline == deadline_time  # the RTO runs from the incident, not from the retry
    else:
        assert new_deadline == requeued_at + interval  # any other DAG: Airflow's rule
