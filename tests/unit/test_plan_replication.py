"""Replication-watch plans: one per component with replicas, thresholds from the spec and the RPO."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from drflow.engines.postgres.replication_watch import ReplicationWatch, WatchedReplica
from drflow.plan.build import build_plans
from drflow.plan.replication import replication_watch_plan
from drflow.spec.load import load_spec, load_spec_text
from drflow.spec.model import Spec

SPEC = Path(__file__).resolve().parents[2] / "plan_specs" / "api-marketplace.yaml"

SMALL = """\
version: 1
metadata: {{name: small, owner: ops}}
regions: [{{name: east, role: primary}}, {{name: west}}]
components:
  - name: db
    criticality: high
    rto: 1h
    rpo: 15m
    datastore:
      type: postgres
      database: app
      primary: {{conn_id: pg_primary, region: east}}
{datastore_extra}
"""


def small_spec(datastore_extra: str) -> Spec:
    return load_spec_text(SMALL.format(datastore_extra=datastore_extra), "small.yaml").spec


def test_every_api_marketplace_component_gets_a_watch_with_its_rpo_as_max_lag() -> None:
    plans = [p for p in build_plans(load_spec(SPEC).spec, SPEC) if p.kind == "replication-watch"]
    assert len(plans) == 6
    plan = next(p for p in plans if p.component == "billing")
    assert plan.dag_id == "dr.api-marketplace.billing.replication-watch"
    assert plan.schedule is None and plan.schedule_every_s == 60
    assert plan.max_active_runs == 1 and plan.retries == 0
    assert "kind:replication-watch" in plan.tags
    [check] = plan.tasks
    assert check.task_id == "check_replication" and check.action == "postgres.replication_lag"
    assert check.retries == 0
    params = dict(check.params)
    settings = dict(params.pop("watch"))
    watch = settings.pop("slot_watch")
    # The spec's other slots on this primary are watched too: WAL archiving slots and orphans.
    assert watch["orphan_limit_bytes"] == 10 * 1024**3 and "billing" in watch["components"]
    # Billing archives WAL too (issue 9 item 6: PostgreSQL with replica and WAL), through its own slot.
    assert {(c["kind"], c["slot"]) for c in watch["claims"] if c["component"] == "billing"} == {
        ("replica", "drflow_sandbox_replica"),
        ("wal", "drflow_wal_6ad8a6_billing_wal_every_10m"),
    }
    assert settings == {
        "primary_conn_id": "drflow_pg_primary",
        "database": "billing",
        "replicas": [{"name": "replica-1", "conn_id": "drflow_pg_replica", "slot": "drflow_sandbox_replica"}],
        "warn_lag_s": 60,
        "max_lag_s": 15 * 60,
        "max_slot_retained_bytes": 1024**3,
        "connect_timeout": 5,
        "synchronous": False,  # billing is high: asynchronous by default
    }
    assert params == {"poke_interval": 10, "timeout": 60}
    assert "failure above 15m (the RPO)" in plan.doc_md
    assert "password" not in str(check.params).lower()


def test_spec_settings_override_defaults() -> None:
    spec = small_spec(
        "      replicas: [{name: r1, conn_id: pg_r1, region: west, slot: r1_slot}]\n"
        "      replication: {interval: 30s, warn_lag: 10s, max_lag: 2m, max_slot_retained: 256MiB}"
    )
    plan = replication_watch_plan(spec, spec.components[0], "small.yaml")
    assert plan is not None
    params = plan.task("check_replication").params
    settings = params["watch"]
    assert (settings["warn_lag_s"], settings["max_lag_s"], settings["max_slot_retained_bytes"]) == (
        10,
        120,
        256 * 1024**2,
    )
    assert settings["replicas"] == [{"name": "r1", "conn_id": "pg_r1", "slot": "r1_slot"}]
    assert (plan.schedule_every_s, params["timeout"], params["poke_interval"]) == (30, 30, 5)
    assert "slot `r1_slot`" in plan.doc_md and "(the RPO)" not in plan.doc_md


@pytest.mark.parametrize(
    "extra",
    ["", "      replicas: [{name: r1, conn_id: pg_r1, region: west}]\n      replication: {enabled: false}"],
    ids=["no-replicas", "disabled"],
)
def test_no_watch_without_replicas_or_when_disabled(extra: str) -> None:
    spec = small_spec(extra)
    assert replication_watch_plan(spec, spec.components[0], "small.yaml") is None
    assert not [p for p in build_plans(spec, "small.yaml") if p.kind == "replication-watch"]


def test_the_watch_renders_as_a_deferrable_sensor_on_an_interval() -> None:
    from drflow.render.airflow import render_dag
    from drflow.sensors.replication import ReplicationLagSensor

    spec = small_spec("      replicas: [{name: r1, conn_id: pg_r1, region: west}]")
    plan = replication_watch_plan(spec, spec.components[0], "small.yaml")
    assert plan is not None
    dag = render_dag(plan)
    assert dag.schedule == timedelta(minutes=1) and dag.max_active_runs == 1
    sensor = dag.get_task("check_replication")
    assert isinstance(sensor, ReplicationLagSensor)
    assert sensor.deferrable is True and sensor.timeout == 60 and sensor.retries == 0


def test_the_trigger_carries_conn_ids_only_and_round_trips() -> None:
    from importlib import import_module

    from drflow.triggers.replication import ReplicationLagTrigger

    spec = small_spec("      replicas: [{name: r1, conn_id: pg_r1, region: west}]")
    plan = replication_watch_plan(spec, spec.components[0], "small.yaml")
    assert plan is not None
    watch = ReplicationWatch.from_params(plan.task("check_replication").params["watch"])
    assert watch.replicas == (WatchedReplica("r1", "pg_r1", None),) and watch.slot_watch is not None
    trigger = ReplicationLagTrigger(watch=watch, poke_interval=5, timeout=30)
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    again = getattr(import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs) and again.watch == watch
    assert set(kwargs) == {"watch", "poke_interval", "timeout"} and "password" not in str(kwargs)


def test_the_sensor_and_its_trigger_share_the_plans_watch_settings() -> None:
    from drflow.render.airflow import render_dag
    from drflow.sensors.replication import ReplicationLagSensor
    from drflow.triggers.replication import ReplicationLagTrigger

    spec = small_spec("      replicas: [{name: r1, conn_id: pg_r1, region: west}]")
    plan = replication_watch_plan(spec, spec.components[0], "small.yaml")
    assert plan is not None
    sensor = render_dag(plan).get_task("check_replication")
    assert isinstance(sensor, ReplicationLagSensor)
    watch = ReplicationWatch.from_params(plan.task("check_replication").params["watch"])
    assert sensor.watch == watch
    trigger = ReplicationLagTrigger(watch=sensor.watch, timeout=5)
    assert trigger.serialize()[1]["watch"] == watch.to_params()
    with pytest.raises(ValueError, match="unknown replication-watch settings"):
        ReplicationWatch.from_params({**watch.to_params(), "password": "x"})
