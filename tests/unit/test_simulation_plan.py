"""Simulations: the DAG a plan's simulation compiles to, its contract, and the job's bookkeeping where no server is
needed (steps that act on live systems are only recorded, a failed step stops what waits for it, the result's
shape, the result in every target on its own). The copies themselves: tests/integration/test_simulation.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from drflow.actions.traffic import simulation_record_name
from drflow.cli import app
from drflow.contracts import ContractError, SimulationRun
from drflow.jobs.simulation import run_simulation
from drflow.jobs.simulation_copies import RestoredPoint, SourceNow, data_loss
from drflow.jobs.simulation_steps import copies_needed
from drflow.plan.build import build_plans
from drflow.plan.simulation import simulation_plan, simulation_run
from drflow.store.exercise_results import write_exercise_result
from drflow.store.factory import target_catalogs
from tests.unit.recovery_spec import EXAMPLE, SPEC, load

FILES_SPEC = """\
version: 1
metadata: {name: assets, owner: web-team}
regions: [{name: us-east-1, role: primary}]
storage:
  - {name: local-a, type: local, path: STORE_A}
  - {name: local-b, type: local, path: STORE_B}
components:
  - name: images
    criticality: low
    rto: 2h
    rpo: 1d
    datastore: {type: files, path: /srv/images}
notifications:
  - {name: ops, type: webhook, conn_id: ops_hook}
recovery_plans:
  - name: reupload
    scenario: human-error
    status: draft
    components: [images]
    approval: {approvers: [bob, carol]}
    steps:
      - {name: announce, action: notify, channels: [ops], message: Re-uploading the images.}
      - {name: flush, action: run_command, command: [no-such-script.sh]}
      - {name: tell, type: manual, assignees: [alice], instructions: Tell the customers.}
      - {name: go, type: approval, approvers: [bob], depends_on: [announce], instructions: Go?}
"""


def test_every_plan_but_a_retired_one_gets_a_manual_simulation_dag(tmp_path: Path) -> None:
    spec = load(SPEC, tmp_path).spec
    [dag] = [p for p in build_plans(spec, "shop.yaml") if p.kind == "simulation"]
    assert dag.dag_id == "dr.shop.plan.failover.simulation" and dag.schedule is None
    assert [(t.task_id, t.action, t.upstream) for t in dag.tasks] == [
        ("simulate", "simulation.run", ()),
        ("record_exercise", "simulation.record", ("simulate",)),
    ]
    assert dag.task("simulate").retries == 0
    assert {"kind:simulation", "scenario:infrastructure-failure", "component:orders", "program:simulation"} <= set(
        dag.tags
    )
    assert "- `promote`: promotes the copy of the standby" in dag.doc_md
    assert "- `tell`: manual step: recorded as who would be asked, not waited for" in dag.doc_md
    retired = load(SPEC.replace("status: approved", "status: retired"), tmp_path).spec
    assert not [p for p in build_plans(retired, "shop.yaml") if p.kind == "simulation"]


def test_an_exercise_gives_the_simulation_its_name_and_schedule(tmp_path: Path) -> None:
    spec = load(SPEC, tmp_path).spec
    dag = simulation_plan(spec, spec.recovery_plans[0], "shop.yaml", schedule="@quarterly", exercise="quarterly-sim")
    assert dag.schedule == "0 0 1 */3 *" and "program:quarterly-sim" in dag.tags
    assert SimulationRun.from_params(dag.task("simulate").params["simulation"]).exercise == "quarterly-sim"


def test_the_contract_carries_the_steps_in_order_and_every_storage_target(tmp_path: Path) -> None:
    spec = load(SPEC, tmp_path).spec
    run = simulation_run(spec, spec.recovery_plans[0])
    params = json.loads(json.dumps(run.to_params()))  # what XCom and the serializer see
    assert SimulationRun.from_params(params) == run
    assert [s.name for s in run.steps] == ["gate", "fence", "promote", "check", "tell"]
    assert run.after == {
        "gate": (),
        "fence": ("gate",),
        "promote": ("fence",),
        "check": ("promote",),
        "tell": ("promote",),
    }
    assert [t["name"] for t in run.storage] == ["local-a"]
    assert copies_needed(run.plan, list(run.steps)) == {"orders": {"primary", "replica-1"}}
    with pytest.raises(ContractError, match="'after' does not match the steps"):
        SimulationRun.from_params({**params, "after": {**params["after"], "tell": ["nowhere"]}})
    with pytest.raises(ContractError, match="no 'storage'"):
        SimulationRun.from_params({k: v for k, v in params.items() if k != "storage"})


def test_the_example_plans_simulate_their_database_steps_on_copies_of_the_nodes_they_name() -> None:
    from drflow.spec.load import load_spec

    spec = load_spec(EXAMPLE).spec
    needed = {
        p.name: copies_needed(simulation_run(spec, p).plan, list(simulation_run(spec, p).steps))
        for p in spec.recovery_plans
    }
    assert needed == {
        "region-failover": {"user-database": {"primary", "replica-1"}},
        "data-corruption": {},  # the restore step makes its own copy; validation runs on it
        "security-incident": {"user-database": {"primary"}},
    }
    assert simulation_record_name("db.api-marketplace.internal.") == "drflow-simulation.db.api-marketplace.internal."


def _files_run(tmp_path: Path) -> SimulationRun:
    text = FILES_SPEC.replace("STORE_A", str(tmp_path / "a")).replace("STORE_B", str(tmp_path / "b"))
    spec = load(text, tmp_path).spec
    return simulation_run(spec, spec.recovery_plans[0])


def test_steps_on_live_systems_are_recorded_and_a_failed_step_stops_what_waits_for_it(tmp_path: Path) -> None:
    run = _files_run(tmp_path)
    lines: list[str] = []
    result = run_simulation(run, run_id="manual__1", say=lines.append)
    findings = {f["step"]: f for f in result["findings"]}
    assert [f["step"] for f in result["findings"]] == ["announce", "flush", "tell", "go", "cleanup"]
    assert findings["announce"]["ok"] and "would notify ops: not sent" in findings["announce"]["detail"]
    assert not findings["flush"]["ok"] and "there is no script" in findings["flush"]["detail"]
    assert findings["tell"] == {
        "step": "tell",
        "ok": False,
        "detail": "not run: it waits for flush, which did not pass",
    }
    assert findings["go"]["ok"] and "would ask bob to approve" in findings["go"]["detail"]
    assert findings["cleanup"]["ok"]
    assert result["outcome"] == "failed"
    assert result["measured"] == {"rto_s": None, "rpo_s": None}  # no recovery time for a plan that failed
    assert result["objectives"] == {"rto_s": 7200, "rpo_s": 86400}
    assert result["dag_id"] == "dr.assets.plan.reupload.simulation" and result["run_id"] == "manual__1"
    assert result["components"] == ["images"] and result["participants"] == []
    assert len(lines) == 5 and lines[1].startswith("FAIL flush: ")


def test_the_result_goes_into_every_target_on_its_own(tmp_path: Path) -> None:
    run = _files_run(tmp_path)
    result: dict[str, Any] = run_simulation(run, run_id="manual__2", say=lambda _: None)
    (tmp_path / "b").write_text("a file where the store's directory should be")
    stored = write_exercise_result(result, run.storage)
    [(target, [key])] = stored["written"].items()
    assert target == run.storage[0]["name"] and list(stored["failed"]) == ["local-b"]
    [(_, catalog)] = target_catalogs("assets", [run.storage[0]])
    [stored] = catalog.read_reports("images", "exercise")
    assert stored == result
    stamp = key.rsplit("/", 1)[-1]
    assert stamp.endswith("-simulation.json") and stamp[:8] == result["started_at"][:10].replace("-", "")


def test_the_data_loss_is_nothing_when_the_copy_reaches_the_source_s_wal_position() -> None:
    then = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
    point = RestoredPoint(then, "0/A000000", "backup x")
    idle = SourceNow(then + timedelta(minutes=3), "0/A000000", "")
    assert data_loss(point, idle)[0] == 0.0 and "nothing lost" in data_loss(point, idle)[1]
    busy = SourceNow(then + timedelta(minutes=3), "0/A000100", "")
    lost, how = data_loss(point, busy)
    assert lost == 180.0 and how.endswith("at most 3m lost, 256 bytes of WAL behind")
    unknown = SourceNow(then + timedelta(seconds=90), None, " (the production primary could not be read)")
    assert data_loss(point, unknown)[0] == 90.0


def test_simulate_names_the_plans_a_spec_has(tmp_path: Path) -> None:
    spec = tmp_path / "shop.yaml"
    spec.write_text(SPEC)
    result = CliRunner().invoke(app, ["simulate", "--spec", str(spec), "--plan", "nope"])
    assert result.exit_code == 1
    assert "has no recovery plan 'nope' (its plans: failover); give one to --plan" in result.stderr
