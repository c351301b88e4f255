"""`drflow compliance-report` and `drflow report` with storage targets down: the other targets' evidence is still
reported, the targets down are named, and a report that could read nothing fails."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drflow.cli.main import app
from drflow.engines.postgres.cluster import free_port
from drflow.spec.load import load_spec
from drflow.store.factory import target_catalogs

SPEC = """\
version: 1
metadata: {{name: down-test, owner: test-team}}
regions: [{{name: us-east-1, role: primary}}, {{name: eu-west-1}}]
storage:
  - {{name: here, type: local, path: {store}, region: us-east-1}}
  - {{name: gone, type: s3, bucket: drflow-gone, conn_id: down_s3, region: eu-west-1}}
components:
""" + "".join(
    f"""\
  - name: {name}
    criticality: high
    rto: 1h
    rpo: 1h
    datastore: {{{{type: postgres, database: {name}, primary: {{{{conn_id: pg, region: us-east-1}}}}}}}}
    backups:
      - {{{{name: full, type: full, method: pg_basebackup, schedule: "@daily", targets: [here, gone],
         retention: {{{{days: 7}}}}}}}}
"""
    for name in ("orders", "billing")
)


def bucket_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `gone` target's connection: nothing listens on its port, so every request is refused at once."""
    down = {
        "conn_type": "aws",
        "login": "x",
        "password": "y",
        "extra": {"endpoint_url": f"http://127.0.0.1:{free_port()}"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_DOWN_S3", json.dumps(down))


def test_a_target_down_is_named_once_and_the_other_targets_evidence_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket_down(monkeypatch)
    spec_file = tmp_path / "down-test.yaml"
    spec_file.write_text(SPEC.format(store=tmp_path / "store"))
    spec = load_spec(spec_file).spec
    started = datetime.now(UTC) - timedelta(days=2)
    record = {
        "kind": "recovery-record",
        "format_version": 1,
        "spec": "down-test",
        "plan": "restore-orders",
        "scenario": "data-corruption",
        "components": ["orders"],
        "run_id": "manual__1",
        "outcome": "recovered",
        "reason": "a bad migration",
        "triggered_by": {"user": "oncall", "via": "rest_api"},
        "run": {"start": started.isoformat()},
        "recovery": {"measured_s": 900.0, "rto_s": 3600, "rto_met": True},
        "data_loss": {"measured_s": 60.0, "rpo_s": 3600, "rpo_met": True},
    }
    [(_, here)] = target_catalogs("down-test", [spec.storage[0].model_dump(mode="json")])
    here.write_report("orders", "recovery", f"{started:%Y%m%dT%H%M%SZ}-restore-orders-abc123", record)

    result = CliRunner().invoke(app, ["compliance-report", "--spec", str(spec_file), "--json"])
    # The report is written with the evidence it could read; the exit status says it has holes.
    assert result.exit_code == 1, result.output
    assert "storage targets gone could not be read" in result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["unreadable_targets"] == ["gone"]  # used by both components, named once
    assert report["summary"]["incidents"] == 1  # read from the target that is up
    orders = next(c for c in report["components"] if c["component"] == "orders")
    assert orders["unreadable_targets"] == ["gone"]
    assert any("storage target gone could not be read" in p and "down_s3" in p for p in orders["problems"])
    markdown = CliRunner().invoke(app, ["compliance-report", "--spec", str(spec_file)])
    assert "Incidents: 1." in markdown.output and "Unreadable targets: gone." in markdown.output


def test_the_metrics_report_names_targets_down_and_fails_when_it_could_read_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket_down(monkeypatch)
    both = tmp_path / "both.yaml"
    both.write_text(SPEC.format(store=tmp_path / "store"))
    result = CliRunner().invoke(app, ["report", "--spec", str(both), "--json"])
    assert "storage target gone could not be read" in result.stderr
    assert "no storage target could be read" not in result.stderr  # 'here' was read
    json.loads(result.stdout)

    only_down = tmp_path / "only-down.yaml"
    only_down.write_text(
        both.read_text()
        .replace("targets: [here, gone]", "targets: [gone]")
        .replace(f"  - {{name: here, type: local, path: {tmp_path / 'store'}, region: us-east-1}}\n", "")
    )
    result = CliRunner().invoke(app, ["report", "--spec", str(only_down)])
    assert result.exit_code == 1, result.output
    assert "storage target gone could not be read" in result.stderr
    assert "no storage target could be read, so nothing in this report is known" in result.stderr
