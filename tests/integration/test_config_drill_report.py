"""The config drill records its verdict in the store (issue 11 item 7): restore time against the RTO, the
changes not stored yet against the RPO, the validation command; a failing check is a failed report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from drflow.devtools.sandbox.demo_config import seed_demo_config
from drflow.jobs.config import back_up_config
from drflow.plan.build import build_plans
from drflow.render.actions import operator_class
from drflow.spec.config import ConfigSource
from drflow.spec.load import load_spec_text
from drflow.store.factory import target_catalogs


def _drill(tmp_path: Path, routes: Path) -> tuple[Any, dict[str, Any], Any]:
    text = (
        "version: 1\nmetadata: {name: demo, owner: t}\nregions: [{name: r1, role: primary}]\n"
        f"storage: [{{name: local-store, type: local, path: {tmp_path / 'store'}, region: r1}}]\n"
        "components:\n  - name: api-gateway\n    criticality: critical\n    rto: 15m\n    rpo: 5m\n"
        f"    config: {{type: directory, path: {routes}, targets: [local-store], retention: {{days: 30}},\n"
        "             drill: {schedule: '@daily', validate_command: check-routes.sh}}\n"
    )
    spec = load_spec_text(text, tmp_path / "spec.yaml").spec
    seed_demo_config(spec)
    [task] = {p.dag_id: p for p in build_plans(spec, "spec.yaml")}["dr.demo.api-gateway.drill.config"].tasks
    drill = operator_class(task.action)(task_id=task.task_id, **task.params)
    target = spec.target("local-store").model_dump(mode="json")
    [(_, catalog)] = target_catalogs("demo", [target])
    return drill, target, catalog


def test_the_config_drill_reports_its_times_and_a_failed_check(tmp_path: Path) -> None:
    routes = tmp_path / "routes"
    drill, target, catalog = _drill(tmp_path, routes)
    back_up_config("demo", "api-gateway", ConfigSource(kind="directory", path=str(routes)), [target])

    result = drill.execute({})
    [report] = catalog.read_reports("api-gateway", "drill")
    assert {k: v for k, v in report.items() if k in result} == {
        k: v for k, v in result.items() if k not in ("report_key", "restored_to")
    }
    assert (report["drill"], report["passed"], report["problems"]) == ("config", True, [])
    assert (report["rto_s"], report["rpo_s"], report["rto_met"], report["rpo_met"]) == (900, 300, True, True)
    assert 0 < report["restore_s"] < 900 and report["validation"]["passed"]
    # The live routes are the stored version: a restore now loses nothing, however old the version.
    assert report["live_matches_version"] and report["backup_age_s"] == 0 and report["version_age_s"] >= 0

    # A change the backup has not stored yet: the drill still passes, and says what a restore would lose.
    (routes / "v1" / "users.yaml").write_text("path: /v1/users\nupstream: users-canary:8080\n")
    result = drill.execute({})
    assert result["passed"] and not result["live_matches_version"]
    assert result["backup_age_s"] == result["version_age_s"] > 0 and "not backed up yet" in result["warnings"][0]

    # A stored version that fails the reviewed check: a failed drill, recorded before the task fails.
    (routes / "v2" / "broken.yaml").write_text("upstream: nowhere\n")
    back_up_config("demo", "api-gateway", ConfigSource(kind="directory", path=str(routes)), [target])
    with pytest.raises(AirflowFailException, match="(?s)validation command failed: .*invalid route v2/broken.yaml"):
        drill.execute({})
    failed = catalog.read_reports("api-gateway", "drill")[-1]
    assert not failed["passed"] and failed["live_matches_version"] and "check-routes.sh" in failed["problems"][0]
