"""RPO compliance counts configuration sources: real config versions in a local store, a real directory.

A config backed up as it is loses nothing however old its version; a change not backed up yet loses up to
the newest version's age; a component with a database and a config complies only when both do.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drflow.contracts import RpoComponent, RpoReportRun
from drflow.jobs.config import back_up_config
from drflow.jobs.files import FilesBackupRequest, take_files_backup
from drflow.jobs.rpo import component_compliance
from drflow.plan.report import rpo_report_plan
from drflow.spec.config import ConfigSource
from drflow.spec.load import load_spec
from drflow.store.manifest import make_backup_id
from tests.plan_inputs import files_component, rpo_component, spec_head

SPEC = "rpo-config"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    root = tmp_path / "routes"
    (root / "v1").mkdir(parents=True)
    (root / "gateway.yaml").write_text("listen: 8443\n")
    (root / "v1" / "users.yaml").write_text("upstream: users:8080\n")
    return root


def _facts(routes: Path, config_target: dict[str, Any], assets: Path | None = None) -> RpoComponent:
    """The API Gateway (RPO 5m) with its routes as ``config:`` in ``config_target`` and, given ``assets``, a
    files datastore backed up there too, as the RPO report's builder writes it."""
    config = {"type": "directory", "path": str(routes), "targets": [config_target["name"]], "retention": {"days": 30}}
    component = (
        files_component("api-gateway", assets, [config_target], rpo="5m", config=config)
        if assets is not None
        else {"name": "api-gateway", "criticality": "low", "rto": "1h", "rpo": "5m", "config": config}
    )
    return rpo_component({**spec_head(SPEC, [config_target]), "components": [component]}, "api-gateway")


def test_a_config_backed_up_as_it_is_complies_whatever_the_age_of_its_version(routes: Path, tmp_path: Path) -> None:
    target = {"name": "local-a", "type": "local", "path": str(tmp_path / "store")}
    facts = _facts(routes, target)
    never = component_compliance(SPEC, facts, datetime.now(UTC))
    assert not never["compliant"] and any("holds no config version" in p for p in never["problems"])
    assert any("no version stored in any target" in n for n in never["notes"])

    back_up_config(SPEC, "api-gateway", ConfigSource(kind="directory", path=str(routes)), [target])
    later = datetime.now(UTC) + timedelta(hours=2)
    quiet = component_compliance(SPEC, facts, later)
    assert quiet["compliant"] and quiet["achievable_rpo_s"] == 0 and quiet["best_source"] == "config"
    [source] = quiet["sources"]
    assert source["source"] == "config:local-a" and source["current"] and source["lag_s"] >= 7200

    (routes / "v1" / "users.yaml").write_text("upstream: users:9090\n")  # changed, not backed up yet
    changed = component_compliance(SPEC, facts, later)
    assert not changed["compliant"] and changed["achievable_rpo_s"] == pytest.approx(7200, abs=5)
    assert any("differs from every stored version" in p for p in changed["problems"])

    back_up_config(SPEC, "api-gateway", ConfigSource(kind="directory", path=str(routes)), [target])
    assert component_compliance(SPEC, facts, later)["compliant"]


def test_data_and_config_must_both_comply(routes: Path, tmp_path: Path) -> None:
    target = {"name": "local-a", "type": "local", "path": str(tmp_path / "store")}
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "logo.svg").write_text("<svg/>")
    back_up_config(SPEC, "api-gateway", ConfigSource(kind="directory", path=str(routes)), [target])
    time.sleep(2)  # the config's version is 2s older than the data's backup
    now = datetime.now(UTC)
    full = take_files_backup(
        FilesBackupRequest(
            spec_name=SPEC,
            component="api-gateway",
            policy="daily-full",
            backup_id=make_backup_id("daily-full", now),
            targets=[target],
            retention_days=7,
            level="full",
            datastore={"type": "files", "path": str(assets)},
            work_dir=str(tmp_path / "work"),
        )
    )
    facts = _facts(routes, target, assets)
    at = full.finished_at + timedelta(seconds=299)  # the data just within its 300s RPO
    fresh = component_compliance(SPEC, facts, at)
    assert fresh["compliant"] and fresh["best_source"] == "files:local-a"

    (routes / "gateway.yaml").write_text("listen: 9443\n")  # the config lags: it decides, though the data complies
    lagging = component_compliance(SPEC, facts, at)
    assert not lagging["compliant"] and lagging["best_source"] == "config"
    assert lagging["achievable_rpo_s"] > 300

    back_up_config(SPEC, "api-gateway", ConfigSource(kind="directory", path=str(routes)), [target])
    stale_data = component_compliance(SPEC, facts, full.finished_at + timedelta(hours=1))  # now the data decides
    assert not stale_data["compliant"] and stale_data["best_source"] == "files:local-a"


def test_the_example_specs_rpo_report_reads_the_configs() -> None:
    spec = load_spec(ROOT / "plan_specs" / "api-marketplace.yaml").spec
    plan = rpo_report_plan(spec, "api-marketplace.yaml")
    assert plan is not None
    report = RpoReportRun.from_params(plan.tasks[0].params["report"])
    facts = {f.name: f for f in report.components}
    gateway = facts["api-gateway"]
    assert gateway.config_source is not None and gateway.config_source.path == "/var/tmp/drflow-demo/api-gateway/routes"
    assert [t["name"] for t in gateway.config_targets] == ["s3-primary", "s3-secondary"]
    assert facts["portal-assets"].config_source is None and "analytics" in facts
