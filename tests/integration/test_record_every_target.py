"""The recovery record survives the region it recovers from: the record task writes it (and the post-incident
report) under every affected component in every target, each on its own, and the readers count it once.

Real stores: moto S3 over HTTP (the "failed region": its connection then points at a closed port) and a local
directory; the record task reads the captured Airflow 3.3.2 API answers over real HTTP.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from drflow.cli import app
from drflow.devtools.sandbox.s3 import aws_conn_uri_json, create_buckets
from drflow.operators.record import RecoveryRecordOperator, record_name
from tests.fixtures.s3 import MotoServer, drop_bucket, free_port
from tests.integration.test_incident_report import RUN_APPROVED, api_server
from tests.plan_inputs import task_params

__all__ = ["api_server"]  # the captured api-server, as a fixture of this module

CONN = "REC_S3"
DAG_ID = "dr.capture.plan.region-failover"
SPEC = """\
version: 1
metadata: {{name: capture, owner: test}}
regions: [{{name: us-east-1, role: primary}}, {{name: us-west-2}}]
storage:
  - {{name: s3-east, type: s3, bucket: {bucket}, conn_id: rec_s3, region: us-east-1, prefix: drflow}}
  - {{name: local-west, type: local, path: {store}, region: us-west-2}}
components:
"""
COMPONENTS = "".join(
    f"""\
  - name: {name}
    criticality: critical
    rto: 30m
    rpo: 5m
    datastore: {{type: postgres, database: {name}, primary: {{conn_id: drflow_pg_primary, region: us-east-1}}}}
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "@daily", targets: [s3-east, local-west],
         retention: {{days: 7}}}}
"""
    for name in ("user-database", "billing")
)
PLAN = """\
recovery_plans:
  - name: region-failover
    scenario: infrastructure-failure
    status: approved
    components: [user-database, billing]
    approval: {approvers: [bob]}
    steps:
      - {name: promote, action: promote, component: user-database, node: primary, fence: null}
"""
START = datetime(2026, 11, 27, 10, 59, 57, tzinfo=UTC)


@pytest.fixture
def bucket(moto_server: MotoServer) -> Iterator[str]:
    name = f"drflow-rec-{uuid.uuid4().hex[:10]}"
    create_buckets(moto_server.endpoint_url, [name], "us-east-1")
    yield name
    drop_bucket(moto_server, name)


def s3_up(monkeypatch: pytest.MonkeyPatch, server: MotoServer) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN}", aws_conn_uri_json(server.endpoint_url, "us-east-1"))


def s3_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The region is gone: nothing listens where its S3 endpoint was, every request is refused at once."""
    dead = {
        "conn_type": "aws",
        "login": "x",
        "password": "y",
        "extra": {"endpoint_url": f"http://127.0.0.1:{free_port()}"},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN}", json.dumps(dead))


def write_spec(tmp_path: Path, bucket: str, store: Path) -> Path:
    path = tmp_path / "capture.yaml"
    path.write_text(SPEC.format(bucket=bucket, store=store) + COMPONENTS + PLAN)
    return path


def run_record(spec: Path, api: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Exception | None]:
    """The record task of the captured run, its params from the plan builder; (its XCom, what it raised)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_DRFLOW_AIRFLOW_API",
        json.dumps({"conn_type": "http", "host": api, "login": "auditor", "password": "pw"}),
    )
    pushed: dict[str, Any] = {}
    context = {
        "dag_run": SimpleNamespace(dag_id=DAG_ID, run_id=RUN_APPROVED, start_date=START),
        "ti": SimpleNamespace(xcom_push=lambda key, value: pushed.update({key: value}), xcom_pull=lambda **_: None),
    }
    operator = RecoveryRecordOperator(
        task_id="record", **task_params(spec.read_text(), ".plan.region-failover", "record")
    )
    raised: Exception | None = None
    try:
        pushed["return_value"] = operator.execute(context)
    except Exception as exc:  # what Airflow would see
        raised = exc
    monkeypatch.delenv("AIRFLOW_CONN_DRFLOW_AIRFLOW_API")  # the readers below use the store alone
    return pushed["return_value"], raised


def name() -> str:
    return record_name("region-failover", SimpleNamespace(run_id=RUN_APPROVED, start_date=START))


def incident_report(spec: Path) -> Any:
    return CliRunner().invoke(app, ["incident-report", "--run", RUN_APPROVED, "--spec", str(spec)])


def compliance(spec: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["compliance-report", "--spec", str(spec), "--from", "2026-11-01", "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_with_the_first_target_down_the_record_is_stored_in_the_other_and_the_task_succeeds(
    tmp_path: Path, bucket: str, api_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    spec = write_spec(tmp_path, bucket, store)
    s3_down(monkeypatch)

    record, raised = run_record(spec, api_server, monkeypatch)

    assert raised is None, raised
    assert record["outcome"] == "recovered"
    assert list(record["stored"]) == ["local-west"]
    assert record["stored"]["local-west"] == [
        f"capture/{component}/reports/recovery/{name()}.json" for component in ("user-database", "billing")
    ]
    [(down, why)] = record["store_failures"].items()
    assert down == "s3-east" and "127.0.0.1" in why
    assert record["report_key"] == f"capture/user-database/reports/recovery/{name()}.json"
    for key in record["stored"]["local-west"]:
        assert json.loads((store / key).read_text())["run_id"] == RUN_APPROVED
    incident = json.loads((store / record["incident_report_key"]).read_text())
    assert "Storage targets that did not take the recovery record:\n- s3-east:" in incident["text"]
    assert record["incident_store_failures"].keys() == {"s3-east"}

    shown = incident_report(spec)
    assert shown.exit_code == 0, shown.output
    assert "note: the recovery record could not be read from storage target s3-east" in shown.stderr
    assert "Sources: the recovery record at storage target local-west" in shown.stdout


def test_with_every_target_down_the_task_fails_saying_which_and_why_with_the_record_in_xcom(
    tmp_path: Path, bucket: str, api_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("")
    spec = write_spec(tmp_path, bucket, not_a_directory / "store")
    s3_down(monkeypatch)

    record, raised = run_record(spec, api_server, monkeypatch)

    assert raised is not None
    message = str(raised)
    assert f"the recovery record of run {RUN_APPROVED} (recovered) was stored in no storage target" in message
    assert "s3-east (" in message and "local-west (" in message
    assert "It is in this task's XCom (return_value); fix the target(s)" in message
    assert record["run_id"] == RUN_APPROVED and record["stored"] == {} and record["report_key"] is None
    assert record["store_failures"].keys() == {"s3-east", "local-west"}


def test_two_targets_up_count_the_incident_once_and_one_down_still_finds_it(
    tmp_path: Path, bucket: str, api_server: str, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    spec = write_spec(tmp_path, bucket, store)
    s3_up(monkeypatch, moto_server)

    record, raised = run_record(spec, api_server, monkeypatch)

    assert raised is None, raised
    assert list(record["stored"]) == ["s3-east", "local-west"] and record["store_failures"] == {}
    assert all(len(keys) == 2 for keys in record["stored"].values())  # under both components
    _, report = compliance(spec)
    assert report["summary"]["incidents"] == 1  # two targets × two components hold it: one incident
    for component in report["components"]:
        [incident] = component["incidents"]
        assert incident["run_id"] == RUN_APPROVED and incident["outcome"] == "recovered"
    shown = incident_report(spec)
    assert shown.exit_code == 0 and "Sources: the recovery record at storage target s3-east" in shown.stdout

    s3_down(monkeypatch)  # the region that held the first copy fails
    code, report = compliance(spec)
    assert code == 1 and report["summary"]["unreadable_targets"] == ["s3-east"]
    assert report["summary"]["incidents"] == 1
    assert [len(c["incidents"]) for c in report["components"]] == [1, 1]
    shown = incident_report(spec)
    assert shown.exit_code == 0, shown.output
    assert "Sources: the recovery record at storage target local-west" in shown.stdout
    assert "| RTO (recovery time) |" in shown.stdout
