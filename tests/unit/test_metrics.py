"""DR metrics from a real (local) store: drills, exercises and recovery records written as the tasks write them,
backups committed through the catalog, each target read on its own."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drflow.connections import read_without_airflow
from drflow.contracts.metrics import MetricsRun
from drflow.metrics.compute import metrics_snapshot
from drflow.metrics.gather import gather
from drflow.metrics.gauges import gauges
from drflow.metrics.history import read_history, store_snapshot
from drflow.metrics.html import report_html
from drflow.metrics.series import collect
from drflow.metrics.text import report_text
from drflow.plan.metrics import metrics_run
from drflow.spec.exercises import ExerciseSchedule
from drflow.spec.load import load_spec_text
from drflow.store.catalog import Catalog
from drflow.store.local import LocalStore
from drflow.store.manifest import BackupManifest

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SPEC = """\
version: 1
metadata: {{name: shop, owner: team}}
regions: [{{name: r1, role: primary}}]
storage:
  - {{name: near, type: local, path: {near}}}
  - {{name: far, type: local, path: {far}}}
components:
  - name: orders
    display_name: Orders <db>
    criticality: critical
    rto: 30m
    rpo: 5m
    datastore: {{type: postgres, database: orders, primary: {{conn_id: pg, region: r1}}}}
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "0 2 * * *", targets: [near, far],
         retention: {{days: 7}}}}
    drills:
      - {{name: weekly-restore, type: restore, schedule: "0 4 * * 0", target: far}}
  - name: billing
    criticality: high
    rto: 1h
    rpo: 1h
    datastore: {{type: postgres, database: billing, primary: {{conn_id: pg, region: r1}}}}
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "0 2 * * *", targets: [near],
         retention: {{days: 7}}}}
    drills:
      - {{name: weekly-restore, type: restore, schedule: "0 4 * * 0"}}
recovery_plans:
  - name: failover
    scenario: infrastructure-failure
    status: approved
    components: [orders, billing]
    approval: {{approvers: [a, b]}}
    steps:
      - {{name: tell, type: manual, assignees: [a], instructions: Tell people.}}
"""


@pytest.fixture
def run(tmp_path: Path) -> MetricsRun:
    text = SPEC.format(near=tmp_path / "near", far=tmp_path / "far")
    spec = load_spec_text(text, tmp_path / "shop.yaml").spec
    assert spec is not None
    return metrics_run(spec, [ExerciseSchedule("quarterly-tabletop", "@quarterly")])


def catalog(tmp_path: Path, target: str) -> Catalog:
    return Catalog(LocalStore(tmp_path / target), "shop")


def backup(cat: Catalog, component: str, finished: datetime) -> None:
    backup_id = f"{finished:%Y%m%dT%H%M%SZ}-daily-full-abcdef"
    cat.begin(component, backup_id)
    data = b"base backup bytes"
    obj = cat.put_object_bytes(component, backup_id, "base.tar", data)
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    manifest = BackupManifest(
        backup_id=backup_id,
        spec="shop",
        component=component,
        policy="daily-full",
        backup_type="full",
        method="pg_basebackup",
        started_at=finished - timedelta(seconds=30),
        finished_at=finished,
        objects=[obj],
        retention_days=7,
    )
    cat.commit(manifest)


def drill(cat: Catalog, component: str, at: datetime, *, passed: bool, restore_s: float = 42.0) -> None:
    checks = [{"name": "rows", "expected": "10", "actual": "10" if passed else "9", "passed": passed}]
    report = {
        "spec": "shop",
        "component": component,
        "drill": "weekly-restore",
        "dag_id": f"dr.shop.{component}.drill.weekly-restore",
        "run_id": f"scheduled__{at.isoformat()}",
        "started_at": (at - timedelta(seconds=restore_s)).isoformat(),
        "finished_at": at.isoformat(),
        "restore_s": restore_s,
        "backup_age_s": 120.0,
        "checks": checks,
        "passed": passed,
        "problems": [] if passed else ["validation failed: rows"],
        "rto_s": 1800,
        "rpo_s": 300,
        "rto_met": True,
        "rpo_met": True,
    }
    cat.write_report(component, "drill", f"{at:%Y%m%dT%H%M%SZ}-weekly-restore", report)


def exercise(cat: Catalog, at: datetime, outcome: str = "passed") -> None:
    result = {
        "kind": "exercise",
        "format_version": 1,
        "spec": "shop",
        "exercise": "quarterly-tabletop",
        "type": "tabletop",
        "plan": "failover",
        "scenario": "infrastructure-failure",
        "components": ["orders", "billing"],
        "dag_id": "dr.shop.exercise.quarterly-tabletop",
        "run_id": f"manual__{at.isoformat()}",
        "started_at": (at - timedelta(minutes=40)).isoformat(),
        "finished_at": at.isoformat(),
        "duration_s": 2400.0,
        "participants": ["a", "b"],
        "outcome": outcome,
        "measured": {"rto_s": None, "rpo_s": None},
        "objectives": {"rto_s": 1800, "rpo_s": 300},
        "findings": [{"step": "tell", "ok": True, "detail": "status page ready"}],
    }
    cat.write_report("orders", "exercise", f"{at:%Y%m%dT%H%M%SZ}-quarterly-tabletop", result)


def recovery(cat: Catalog, at: datetime, outcome: str, measured_s: float | None, run_id: str) -> None:
    cat.write_report(
        "orders",
        "recovery",
        f"{at:%Y%m%dT%H%M%SZ}-failover-{run_id[-6:]}",
        recovery_record(at, outcome, measured_s, run_id),
    )


def recovery_record(at: datetime, outcome: str, measured_s: float | None, run_id: str) -> dict[str, Any]:
    return {
        "kind": "recovery-record",
        "spec": "shop",
        "plan": "failover",
        "components": ["orders", "billing"],
        "dag_id": "dr.shop.plan.failover",
        "run_id": run_id,
        "outcome": outcome,
        "run": {"start": (at - timedelta(seconds=measured_s or 0)).isoformat(), "end": at.isoformat()},
        "steps": [{"task_id": "validate", "verification": True, "state": "success"}],
        "recovery": {"measured_s": measured_s, "rto_s": 1800, "rto_met": True},
        "data_loss": {"measured_s": 12.5, "rpo_s": 300},
        "problems": [],
        "recorded_at": at.isoformat(),
    }


def snapshot_of(run: MetricsRun) -> dict[str, Any]:
    return metrics_snapshot(run, gather(run, NOW - timedelta(seconds=run.period_s)), NOW)


def component(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in snapshot["components"] if c["component"] == name]
    return found


def test_a_failing_drill_turns_its_component_red_and_names_why(run: MetricsRun, tmp_path: Path) -> None:
    near, far = catalog(tmp_path, "near"), catalog(tmp_path, "far")
    for cat in (near, far):
        backup(cat, "orders", NOW - timedelta(hours=3))
    backup(near, "billing", NOW - timedelta(hours=3))
    drill(far, "orders", NOW - timedelta(days=8), passed=True, restore_s=30.0)
    drill(far, "orders", NOW - timedelta(hours=1), passed=False, restore_s=50.0)
    drill(near, "billing", NOW - timedelta(hours=2), passed=True)

    snapshot = snapshot_of(run)
    orders, billing = component(snapshot, "orders"), component(snapshot, "billing")
    assert orders["status"] == "red"
    assert any("drill weekly-restore failed" in r and "validation failed: rows" in r for r in orders["reasons"])
    assert orders["actual"]["rto_s"] == 50.0 and orders["actual"]["rto_met"] is True
    assert orders["recovery"] == {"attempts": 2, "succeeded": 1, "ratio": 0.5}
    assert orders["validation"] == {"checks": 2, "passed": 1, "ratio": 0.5}
    # Billing is proven, but with no RPO-compliance report yet and its tabletop not done, good is not claimed.
    assert billing["status"] == "amber"
    assert billing["reasons"] == ["no RPO-compliance report in the store yet", "exercises done 0 of 1 scheduled"]
    assert snapshot["status"] == "red"
    assert [(r["source"], r["target"], r["state"]) for r in orders["backups"]] == [
        ("daily-full", "near", "ok"),
        ("daily-full", "far", "ok"),
    ]
    assert orders["backups"][0]["age_s"] == 3 * 3600


def test_rpo_report_recovery_records_and_exercises_count_for_every_component_once(
    run: MetricsRun, tmp_path: Path
) -> None:
    near, far = catalog(tmp_path, "near"), catalog(tmp_path, "far")
    for cat in (near, far):
        backup(cat, "orders", NOW - timedelta(hours=3))
    backup(near, "billing", NOW - timedelta(hours=3))
    drill(far, "orders", NOW - timedelta(hours=5), passed=True)
    drill(near, "billing", NOW - timedelta(hours=5), passed=True)
    for name in ("orders", "billing"):
        report = {"component": name, "compliant": True, "achievable_rpo_s": 60.0, "checked_at": NOW.isoformat()}
        near.write_report(name, "rpo-compliance", f"{NOW:%Y%m%dT%H%M%SZ}", report)
    recovery(near, NOW - timedelta(days=3), "recovered", 600.0, "manual__one")
    recovery(near, NOW - timedelta(days=2), "failed", None, "manual__two")
    recovery(near, NOW - timedelta(days=1), "refused", None, "manual__three")
    exercise(near, NOW - timedelta(hours=2))

    snapshot = snapshot_of(run)
    billing = component(snapshot, "billing")
    # The records are stored under orders only, and count for billing too.
    assert billing["mttr_s"] == 600.0 and billing["recoveries"] == 1
    assert billing["recovery_by_kind"]["recovery"] == {"attempts": 2, "succeeded": 1, "ratio": 0.5}
    assert billing["last_recovery"]["passed"] is False
    assert billing["status"] == "red"
    assert any(r.startswith("recovery plan failover failed") for r in billing["reasons"])
    # A tabletop proves people and plan, not a recovery time: it is the last proof, not a recovery attempt.
    assert billing["last_proof"]["kind"] == "exercise"
    assert billing["recovery"]["attempts"] == 3
    completion = billing["exercise_completion"]
    assert completion["scheduled"] == 1 and completion["done"] == 1 and completion["ratio"] == 1.0
    # Spec figures count each recovery once although two components share it.
    assert snapshot["recovery_by_kind"]["recovery"]["attempts"] == 2
    assert snapshot["mttr_s"] == 600.0
    assert component(snapshot, "orders")["rpo_compliance"]["compliant"] is True


def test_a_recovery_record_in_every_target_under_every_component_counts_once(run: MetricsRun, tmp_path: Path) -> None:
    from drflow.store.report_copies import write_everywhere

    at = NOW - timedelta(days=1)
    record = recovery_record(at, "recovered", 600.0, "manual__one")
    # As the record task stores it: under both components, in every target of them.
    stored = write_everywhere(
        "shop", ["orders", "billing"], "recovery", f"{at:%Y%m%dT%H%M%SZ}-failover", record, run.targets
    )
    assert stored["failed"] == {} and [len(keys) for keys in stored["written"].values()] == [2, 2]
    snapshot = snapshot_of(run)
    for name in ("orders", "billing"):
        found = component(snapshot, name)
        assert found["recovery_by_kind"]["recovery"] == {"attempts": 1, "succeeded": 1, "ratio": 1.0}
        assert found["recoveries"] == 1 and found["mttr_s"] == 600.0
    assert snapshot["recovery_by_kind"]["recovery"]["attempts"] == 1 and snapshot["recoveries"] == 1


def test_every_target_is_read_on_its_own(run: MetricsRun, tmp_path: Path) -> None:
    backup(catalog(tmp_path, "near"), "orders", NOW - timedelta(days=3))
    # The far target's connection is defined nowhere: that target cannot be read, the near one still is.
    broken = {"name": "far", "type": "s3", "bucket": "nowhere", "conn_id": "drflow_test_undefined", "region": "r1"}
    targets = tuple(broken if t["name"] == "far" else t for t in run.targets)
    read_without_airflow()  # as on the incident CLI: no Airflow import, the connection read from the environment
    try:
        orders = component(snapshot_of(MetricsRun(**{**run.__dict__, "targets": targets})), "orders")
    finally:
        read_without_airflow(False)
    rows = {r["target"]: r for r in orders["backups"]}
    assert rows["near"]["state"] == "late" and rows["near"]["age_s"] == 3 * 86400
    assert rows["far"]["state"] == "unreadable" and rows["far"]["error"]
    assert orders["status"] == "amber"
    assert any(r.startswith("storage target far could not be read") for r in orders["reasons"])
    assert "never drilled: no drill or exercise report in the store" in orders["reasons"]


def test_no_backup_at_all_is_red(run: MetricsRun) -> None:
    orders = component(snapshot_of(run), "orders")
    assert orders["status"] == "red"
    assert "no backup of any source in any storage target" in orders["reasons"]


def test_exercise_completion_counts_missed_runs(run: MetricsRun, tmp_path: Path) -> None:
    schedules = (ExerciseSchedule("monthly-walkthrough", "@monthly", ("orders",)),)
    monthly = MetricsRun(**{**run.__dict__, "exercises": schedules})
    cat = catalog(tmp_path, "near")
    for days in (5, 35):
        result = {
            "exercise": "monthly-walkthrough",
            "type": "walkthrough",
            "components": ["orders"],
            "finished_at": (NOW - timedelta(days=days)).isoformat(),
            "outcome": "passed",
            "findings": [],
        }
        cat.write_report("orders", "exercise", f"{NOW - timedelta(days=days):%Y%m%dT%H%M%SZ}-walk", result)
    snapshot = snapshot_of(monthly)
    orders = component(snapshot, "orders")["exercise_completion"]
    assert (orders["scheduled"], orders["done"], orders["ratio"]) == (3, 2, round(2 / 3, 4))
    assert component(snapshot, "billing")["exercise_completion"]["ratio"] is None


def test_gauges_history_text_and_html(run: MetricsRun, tmp_path: Path) -> None:
    far = catalog(tmp_path, "far")
    backup(catalog(tmp_path, "near"), "orders", NOW - timedelta(hours=1))
    backup(far, "orders", NOW - timedelta(hours=2))
    drill(far, "orders", NOW - timedelta(minutes=30), passed=False)
    snapshot, series = collect(run, NOW)

    sent = dict(gauges(snapshot))
    assert sent["drflow.shop.status"] == 2
    assert sent["drflow.shop.orders.status"] == 2
    assert sent["drflow.shop.orders.rto_seconds"] == 42.0
    assert sent["drflow.shop.orders.rpo_seconds"] == 120.0
    assert sent["drflow.shop.orders.rto_objective_seconds"] == 1800
    assert sent["drflow.shop.orders.backup_age_seconds.daily-full.far"] == 7200
    assert sent["drflow.shop.orders.recovery_success_ratio"] == 0.0
    assert "drflow.shop.billing.rto_seconds" not in sent  # never measured: not sent as a made-up zero
    assert "drflow.shop.orders.rpo_compliant" not in sent

    keys = store_snapshot(run, snapshot, NOW)
    assert keys == [f"shop/{name}/reports/metrics/20261201T120000Z.json" for name in ("orders", "billing")]
    [stored] = read_history(run, "orders", NOW - timedelta(hours=1))
    assert stored["status"] == "red" and stored["spec_figures"]["status"] == "red"
    assert json.loads(json.dumps(stored)) == stored

    text = report_text(snapshot)
    assert "# DR metrics of shop: RED" in text and "| Orders <db> (orders) | critical |" in text
    assert "drill weekly-restore FAILED" in text
    html = report_html(snapshot, series)
    assert 'data-component="orders" data-status="red"' in html
    assert "Orders &lt;db&gt;" in html and "<db>" not in html
    assert html.count("<svg") == 2  # billing has neither a backup nor a drill: its charts say so instead
    assert "measured recovery time: no data yet" in html
    assert series["orders"].restore[0][1] == 42.0 and series["orders"].backup_age[-1][1] == 3600


def test_drflow_report_prints_text_json_and_html(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from drflow.cli import app

    spec_file = tmp_path / "shop.yaml"
    spec_file.write_text(SPEC.format(near=tmp_path / "near", far=tmp_path / "far"))
    now = datetime.now(UTC)
    for target in ("near", "far"):
        backup(catalog(tmp_path, target), "orders", now - timedelta(hours=1))
    drill(catalog(tmp_path, "far"), "orders", now - timedelta(minutes=5), passed=False)
    runner = CliRunner()

    text = runner.invoke(app, ["report", "--spec", str(spec_file)])
    assert text.exit_code == 1, text.output  # red: scripts can alert on it
    assert "# DR metrics of shop: RED" in text.output and "drill weekly-restore FAILED" in text.output
    as_json = runner.invoke(app, ["report", "--spec", str(spec_file), "--json", "--period", "30d"])
    data = json.loads(as_json.output)
    assert data["period_s"] == 30 * 86400 and data["components"][0]["status"] == "red"
    page = tmp_path / "report.html"
    runner.invoke(app, ["report", "--spec", str(spec_file), "--html", "-o", str(page)])
    assert 'data-component="orders" data-status="red"' in page.read_text()
    wrong = runner.invoke(app, ["report", "--spec", str(spec_file), "--period", "soon"])
    assert wrong.exit_code == 1 and "--period soon" in wrong.output
