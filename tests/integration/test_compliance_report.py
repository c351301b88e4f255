"""`drflow compliance-report` over a store that real runs filled: a backup (locked, encrypted, copied to a second
region) and its restore drill through Airflow against moto S3, plus an exercise result and a recovery record."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drflow.audit.compliance_render import render_compliance
from drflow.cli.main import app
from drflow.devtools.sandbox.s3 import create_buckets
from drflow.engines.postgres.cluster import LocalCluster
from drflow.spec.load import load_spec
from drflow.store.factory import target_catalogs
from drflow.store.report_copies import write_everywhere
from tests.fixtures.airflow import dagbag
from tests.fixtures.pg import airflow_conn_env, create_database
from tests.fixtures.s3 import MotoServer

pytestmark = pytest.mark.slow

KEY_VARIABLE = "drflow_compliance_key"
SPEC = """\
version: 1
metadata: {{name: audit-test, owner: test-team, reviewed: 2025-01-15}}
defaults: {{retries: 0}}
regions: [{{name: us-east-1, role: primary}}, {{name: eu-west-1}}]
storage:
  - name: vault-east
    type: s3
    bucket: {east}
    conn_id: {conn_id}
    region: us-east-1
    server_side_encryption: AES256
    client_encryption: {{key_variable: {key_variable}}}
  - {{name: vault-west, type: s3, bucket: {west}, conn_id: {conn_id}, region: eu-west-1}}
components:
  - name: payments
    criticality: critical
    rto: 30m
    rpo: 1h
    allowed_regions: [us-east-1, eu-west-1]
    datastore:
      type: postgres
      database: payments
      bin_dir: {bin_dir}
      primary: {{conn_id: audit_pg_primary, region: us-east-1}}
    backups:
      - name: hourly-full
        type: full
        method: pg_basebackup
        schedule: "@hourly"
        targets: [vault-east]
        copy_to: [vault-west]
        retention: {{days: 7, policy: governance}}
    drills:
      - name: daily-restore
        type: restore
        schedule: "@daily"
        validation: [{{name: payments-count, query: select count(*) from payments}}]
"""


@pytest.fixture
def locked_buckets(moto_server: MotoServer) -> Iterator[tuple[str, str]]:
    """Two buckets with Object Lock, in two regions (moto keeps locked objects until the server stops)."""
    east, west = (f"drflow-audit-{uuid.uuid4().hex[:10]}-{suffix}" for suffix in ("e", "w"))
    create_buckets(moto_server.endpoint_url, [east], "us-east-1", object_lock=True)
    create_buckets(moto_server.endpoint_url, [west], "eu-west-1", object_lock=True)
    yield east, west


@pytest.fixture
def spec_file(
    specs_dir_env: Path,
    locked_buckets: tuple[str, str],
    s3_conn_id: str,
    pg_primary: LocalCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    create_database(
        pg_primary,
        "payments",
        "create table payments (id bigint primary key)",
        "insert into payments select generate_series(1, 500)",
    )
    monkeypatch.setenv(f"AIRFLOW_VAR_{KEY_VARIABLE.upper()}", base64.b64encode(os.urandom(32)).decode())
    east, west = locked_buckets
    path = specs_dir_env / "audit-test.yaml"
    path.write_text(
        SPEC.format(east=east, west=west, conn_id=s3_conn_id, key_variable=KEY_VARIABLE, bin_dir=pg_primary.bin_dir)
    )
    with airflow_conn_env("audit_pg_primary", pg_primary):
        yield path


def write_exercise_and_incident(spec_file: Path, started: datetime) -> None:
    """What an exercise DAG and a recovery plan's record task leave in every target (their documented shapes)."""
    spec = load_spec(spec_file).spec
    exercise = {
        "kind": "exercise",
        "format_version": 1,
        "spec": "audit-test",
        "exercise": "quarterly-tabletop",
        "type": "tabletop",
        "plan": "restore-payments",
        "scenario": "database-corruption",
        "components": ["payments"],
        "dag_id": "dr.audit-test.exercise.quarterly-tabletop",
        "run_id": "manual__1",
        "started_at": started.isoformat(),
        "finished_at": (started + timedelta(minutes=25)).isoformat(),
        "duration_s": 1500.0,
        "participants": ["oncall", "dba"],
        "outcome": "passed",
        "measured": {"rto_s": 1260.0, "rpo_s": None},
        "objectives": {"rto_s": 1800, "rpo_s": 3600},
        "findings": [{"step": "repoint-app", "ok": False, "detail": "nobody knew where the app's DSN lives"}],
    }
    record = {
        "kind": "recovery-record",
        "format_version": 1,
        "spec": "audit-test",
        "plan": "restore-payments",
        "scenario": "data-corruption",
        "components": ["payments"],
        "run_id": "manual__2",
        "outcome": "recovered",
        "reason": "a migration dropped a column",
        "triggered_by": {"user": "oncall", "via": "rest_api"},
        "run": {"start": (started - timedelta(minutes=5)).isoformat()},
        "recovery": {"measured_s": 900.0, "rto_s": 1800, "rto_met": True},
        "data_loss": {"measured_s": 4000.0, "rpo_s": 3600, "rpo_met": False},
    }
    targets = [t.model_dump(mode="json") for t in spec.storage]
    for _, catalog in target_catalogs("audit-test", targets):
        catalog.write_report("payments", "exercise", f"{started:%Y%m%dT%H%M%SZ}-quarterly-tabletop", exercise)
    name = f"{started:%Y%m%dT%H%M%SZ}-restore-payments-abc123"
    assert write_everywhere("audit-test", ["payments"], "recovery", name, record, targets)["failed"] == {}


def test_the_report_lists_backups_locks_encryption_copies_drills_exercises_and_incidents(
    airflow_db: Path, spec_file: Path
) -> None:
    bag = dagbag()
    assert bag.import_errors == {}
    assert bag.dags["dr.audit-test.payments.backup.hourly-full"].test().state == "success"
    assert bag.dags["dr.audit-test.payments.drill.daily-restore"].test().state == "success"
    spec = load_spec(spec_file).spec
    [(_, east)] = target_catalogs("audit-test", [spec.storage[0].model_dump(mode="json")])
    [manifest] = east.list_backups("payments")
    started = manifest.started_at
    write_exercise_and_incident(spec_file, started)

    # Three hourly runs asked for: two before the backup (missed), the one whose hour it ran in (done).
    hour = started.replace(minute=0, second=0, microsecond=0)
    period_from = (hour - timedelta(hours=2)).isoformat()
    result = CliRunner().invoke(app, ["compliance-report", "--spec", str(spec_file), "--from", period_from, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    [payments] = report["components"]
    [backups] = payments["backups"]
    assert backups["taken"] == 1 and backups["newest"] == manifest.backup_id
    assert {k: backups["runs"][k] for k in ("scheduled", "done", "missed", "pending", "beyond_retention")} == {
        "scheduled": 3,
        "done": 1,
        "missed": 2,
        "pending": 0,
        "beyond_retention": 0,
    }
    copies = {c["target"]: c for c in payments["copies"]}
    assert copies["vault-east"]["roles"] == ["hourly-full"] and copies["vault-west"]["roles"] == ["hourly-full (copy)"]
    for name in ("vault-east", "vault-west"):
        assert copies[name]["backups"] == 1 and copies[name]["retention"] == {"governance 7d": 1}
        [(mode, lock)] = copies[name]["locks"].items()
        assert mode == "governance" and lock["backups"] == 1
        assert datetime.fromisoformat(lock["retain_until"][0]) > datetime.now(UTC) + timedelta(days=6)
    [(east_encryption, _)] = copies["vault-east"]["encryption"].items()
    server, client = east_encryption.split(", ")
    assert server == "server AES256" and client.startswith(f"client AES-256-GCM (key variable:{KEY_VARIABLE}#")
    assert copies["vault-west"]["encryption"] == {"none": 1}
    assert {r: (e["backups"], e["allowed"], e["nodes"]) for r, e in payments["regions"].items()} == {
        "eu-west-1": (1, True, []),
        "us-east-1": (1, True, ["primary"]),
    }
    [drill] = payments["drills"]
    assert (drill["drill"], drill["done"], drill["passed"], drill["failed"]) == ("daily-restore", 1, 1, 0)
    [drilled] = drill["results"]
    assert drilled["backup_id"] == manifest.backup_id and drilled["rto_met"] is True
    [exercise] = payments["exercises"]  # the spec has no exercise program: done, but not scheduled
    assert (exercise["exercise"], exercise["done"], exercise["passed"], exercise["runs"]) == (
        "quarterly-tabletop",
        1,
        1,
        None,
    )
    assert exercise["results"][0]["gaps"] == ["repoint-app: nobody knew where the app's DSN lives"]
    [incident] = payments["incidents"]
    assert report["summary"]["incidents"] == 1  # the record is in both targets: one incident
    assert (incident["plan"], incident["outcome"], incident["rto_s"], incident["rpo_met"]) == (
        "restore-payments",
        "recovered",
        900.0,
        False,
    )
    assert report["currency"]["stale"] == 1 and report["summary"]["copies_outside_allowed_regions"] == []

    page = CliRunner().invoke(app, ["compliance-report", "--spec", str(spec_file), "--from", period_from, "--html"])
    assert page.exit_code == 0 and page.output.startswith("<!DOCTYPE html>"), page.output
    assert "<td>vault-west</td><td>eu-west-1</td><td>hourly-full (copy)</td><td>1</td>" in page.output
    assert '<tr class="bad">' in page.output  # the recovery lost more data than the RPO allows
    text = render_compliance(report, "md")
    assert "| vault-east | us-east-1 | hourly-full | 1 | 1 |" in text
    assert "66.7m of 1h MISSED" in text
