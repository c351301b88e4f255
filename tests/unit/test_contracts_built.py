"""The contracts of the RPO report, the drills and the copies, as their plan builders write them from the
example specs: each survives ``from_params(to_params())``, and a key its builder always writes, when missing,
is named."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from drflow.contracts import (
    ConfigDrillRun,
    ContractError,
    CopyRun,
    DrillReportRun,
    FilesDrillRun,
    RestoreDrillRun,
    RpoComponent,
    RpoReplica,
    RpoReportRun,
    SnapshotDrillRun,
)
from drflow.engines.postgres.replication_watch import ReplicationWatch, WatchedReplica
from drflow.plan.build import build_plans
from drflow.plan.report import rpo_report_plan
from drflow.spec.load import load_spec
from drflow.spec.model import Spec
from drflow.spec.slots import SlotWatch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "plan_specs" / "api-marketplace.yaml"
EVERY_ACTION = Path(__file__).parent / "data" / "every_action.yaml"


@cache
def example() -> Spec:
    return load_spec(EXAMPLE).spec


def rpo_params() -> dict[str, Any]:
    plan = rpo_report_plan(example(), EXAMPLE.name)
    assert plan is not None
    return dict(plan.task("compute_rpo_compliance").params["report"])


def test_the_rpo_report_run_survives_its_params() -> None:
    params = rpo_params()
    run = RpoReportRun.from_params(params)
    assert run.to_params() == params and RpoReportRun.from_params(run.to_params()) == run
    components = {c.name: c for c in run.components}
    users = components["user-database"]
    # The sources of the example's User Database: its replica, its WAL archive, its targets, its objective.
    assert users.replicas == (RpoReplica("replica-1", "drflow_pg_replica", "drflow_sandbox_replica"),)
    assert (users.primary_conn_id, users.rpo_s, users.wal_interval_s) == ("drflow_pg_primary", 300, 240)
    assert [t["name"] for t in users.targets] == ["s3-primary", "s3-secondary"]
    assert users.allowed_regions == ("us-east-1", "us-west-2")
    gateway = components["api-gateway"]
    assert gateway.config_source is not None and gateway.config_source.path == "/var/tmp/drflow-demo/api-gateway/routes"
    assert [t["name"] for t in gateway.config_targets] == ["s3-primary", "s3-secondary"]
    assert components["portal-assets"].config_source is None and components["portal-assets"].primary_conn_id is None


@pytest.mark.parametrize("key", RpoComponent.FIELDS)
def test_a_component_key_the_builder_writes_is_required(key: str) -> None:
    params = rpo_params()
    facts = {k: v for k, v in params["components"][0].items() if k != key}
    with pytest.raises(ContractError, match=f"RPO report component: the plan gave no '{key}'"):
        RpoReportRun.from_params({**params, "components": [facts]})


@pytest.mark.parametrize("key", ["spec_name", "components", "target"])
def test_a_report_key_the_builder_writes_is_required(key: str) -> None:
    params = {k: v for k, v in rpo_params().items() if k != key}
    with pytest.raises(ContractError, match=f"RPO report run: the plan gave no '{key}'"):
        RpoReportRun.from_params(params)


def test_replicas_without_a_primary_are_refused() -> None:
    [users] = [c for c in rpo_params()["components"] if c["name"] == "user-database"]
    with pytest.raises(ContractError, match="'user-database': replicas without a primary_conn_id"):
        RpoComponent.from_params({**users, "primary_conn_id": None})


DrillContract = type[RestoreDrillRun] | type[FilesDrillRun] | type[DrillReportRun] | type[SnapshotDrillRun]
DRILLS: list[tuple[str, str, DrillContract | type[ConfigDrillRun], tuple[str, ...]]] = [
    # (DAG, task, its contract, the keys a run cannot do without)
    (
        "user-database.drill.weekly-restore",
        "restore_and_validate",
        RestoreDrillRun,
        ("spec_name", "component", "target", "fallback_targets", "database", "bin_dir", "validation"),
    ),
    ("user-database.drill.weekly-restore", "record_report", DrillReportRun, ("target", "name", "rto_s", "rpo_s")),
    ("portal-assets.drill.weekly-tree", "restore_and_validate", FilesDrillRun, ("spec_name", "component", "targets")),
    ("portal-assets.drill.weekly-tree", "record_report", DrillReportRun, ("spec_name", "component", "rpo_s")),
    ("analytics.drill.weekly-volume", "restore_snapshot", SnapshotDrillRun, ("snapshot", "region", "name", "rto_s")),
    (
        "api-gateway.drill.config",
        "drill_config",
        ConfigDrillRun,
        ("config", "name", "rpo_s", "validate_command", "command_timeout_s"),
    ),
]


def drill_params(dag: str, task: str) -> dict[str, Any]:
    [plan] = [p for p in build_plans(example(), EXAMPLE.name) if p.dag_id == f"dr.api-marketplace.{dag}"]
    return dict(plan.task(task).params["drill"])


@pytest.mark.parametrize(("dag", "task", "contract", "keys"), DRILLS, ids=lambda v: getattr(v, "__name__", v))
def test_every_drill_contract_survives_its_params_and_names_a_missing_key(
    dag: str, task: str, contract: DrillContract | type[ConfigDrillRun], keys: tuple[str, ...]
) -> None:
    params = drill_params(dag, task)
    run = contract.from_params(params)
    assert run.to_params() == params and contract.from_params(run.to_params()) == run
    for key in keys:
        with pytest.raises(ContractError, match=f"the plan gave no '{key}'"):
            contract.from_params({k: v for k, v in params.items() if k != key})


def test_the_drills_carry_their_components_objectives() -> None:
    gateway = ConfigDrillRun.from_params(drill_params("api-gateway.drill.config", "drill_config"))
    assert (gateway.facts.name, gateway.facts.rto_s, gateway.facts.rpo_s) == ("config", 15 * 60, 5 * 60)
    assert gateway.validate_command == "check-routes.sh" and gateway.config.component == "api-gateway"
    volume = SnapshotDrillRun.from_params(drill_params("analytics.drill.weekly-volume", "restore_snapshot"))
    assert (volume.region, volume.facts.name, volume.facts.rto_s) == ("us-west-2", "weekly-volume", 2 * 3600)
    report = DrillReportRun.from_params(drill_params("user-database.drill.weekly-restore", "record_report"))
    restore = RestoreDrillRun.from_params(drill_params("user-database.drill.weekly-restore", "restore_and_validate"))
    assert report.target == restore.target and report.facts.rpo_s == 5 * 60
    # The other region's copy first (what a regional disaster leaves), the same backup's other copy as fallback.
    assert (restore.target["name"], [t["name"] for t in restore.fallback_targets]) == ("s3-secondary", ["s3-primary"])
    assert restore.database == "users" and "accounts-count" in [v["name"] for v in restore.validation]


def copy_params() -> dict[str, Any]:
    copies = [
        t for p in build_plans(load_spec(EVERY_ACTION).spec, EVERY_ACTION.name) for t in p.tasks if "copy" in t.params
    ]
    assert copies, "every_action.yaml has a policy with copy_to"
    return dict(copies[0].params["copy"])


def test_the_copy_run_survives_its_params_and_names_a_missing_key() -> None:
    params = copy_params()
    run = CopyRun.from_params(params)
    assert run.to_params() == params and CopyRun.from_params(run.to_params()) == run
    assert [t["name"] for t in run.sources] == ["local-east"] and [t["name"] for t in run.destinations] == [
        "local-west"
    ]
    for key in CopyRun.FIELDS:
        with pytest.raises(ContractError, match=f"copy run: the plan gave no '{key}'"):
            CopyRun.from_params({k: v for k, v in params.items() if k != key})
    with pytest.raises(ContractError, match="copy run: retention_policy 'forever' is not one of"):
        CopyRun.from_params({**params, "retention_policy": "forever"})


def test_the_slot_and_replication_watches_survive_their_params_and_name_a_missing_key() -> None:
    plans = {p.dag_id: p for p in build_plans(example(), EXAMPLE.name)}
    [wal] = [
        p for p in plans.values() if p.dag_id.startswith("dr.api-marketplace.billing.backup.") and "wal" in p.dag_id
    ]
    params = dict(wal.task("check_slots").params["slot_watch"])
    watch = SlotWatch.from_params(params)
    assert watch.to_params() == params and SlotWatch.from_params(watch.to_params()) == watch
    assert {(c.kind, c.component) for c in watch.claims} >= {("wal", "billing"), ("replica", "billing")}
    with pytest.raises(ValueError, match="slot watch settings lack orphan_limit_bytes"):
        SlotWatch.from_params({k: v for k, v in params.items() if k != "orphan_limit_bytes"})

    settings = dict(plans["dr.api-marketplace.billing.replication-watch"].task("check_replication").params["watch"])
    replication = ReplicationWatch.from_params(settings)
    assert replication.to_params() == settings and replication.slot_watch is not None
    assert replication.replicas == (WatchedReplica("replica-1", "drflow_pg_replica", "drflow_sandbox_replica"),)
    with pytest.raises(ValueError, match="incomplete replication-watch settings: 'replicas'"):
        ReplicationWatch.from_params({k: v for k, v in settings.items() if k != "replicas"})
