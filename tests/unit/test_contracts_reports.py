"""The contracts of the RPO report and the drills, as their plan builders write them from the example spec:
each survives ``from_params(to_params())``, and a key its builder always writes, when missing, is named."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from drflow.contracts import ContractError, RpoComponent, RpoReplica, RpoReportRun
from drflow.plan.report import rpo_report_plan
from drflow.spec.load import load_spec
from drflow.spec.model import Spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "plan_specs" / "api-marketplace.yaml"


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
