"""RPO compliance from real sources: a streaming replica, backups in a store, and their absence."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drflow.contracts import RpoComponent
from drflow.engines.postgres.cluster import LocalCluster
from drflow.jobs.backup import take_full_backup
from drflow.jobs.rpo import component_compliance, rpo_compliance
from tests.fixtures.backups import full_backup_request
from tests.fixtures.pg import PG_BIN_DIR, airflow_conn_json
from tests.plan_inputs import postgres_component, rpo_component, spec_head

pytestmark = pytest.mark.slow


def _conn_env(name: str, cluster: LocalCluster) -> str:
    env = f"AIRFLOW_CONN_{name.upper()}"
    os.environ[env] = airflow_conn_json(cluster)
    return env


@pytest.fixture
def pair_conns(
    pg_primary_with_replica: tuple[LocalCluster, LocalCluster],
) -> Iterator[tuple[LocalCluster, LocalCluster]]:
    primary, replica = pg_primary_with_replica
    envs = [_conn_env("rpo_primary", primary), _conn_env("rpo_replica", replica)]
    yield primary, replica
    for env in envs:
        os.environ.pop(env, None)


def _facts(local_target: dict[str, Any], replicas: list[dict[str, Any]]) -> RpoComponent:
    """The User Database (RPO 5m, its primary at `rpo_primary`) backed up into ``local_target``, as the
    RPO report's builder writes it."""
    component = postgres_component(
        "user-database", "users", PG_BIN_DIR, [local_target], conn_id="rpo_primary", replicas=replicas, rpo="5m"
    )
    return rpo_component({**spec_head("rpo-test", [local_target]), "components": [component]}, "user-database")


def test_a_streaming_replica_keeps_the_rpo_but_the_report_says_it_alone_does(
    pair_conns: tuple[LocalCluster, LocalCluster], local_target: dict[str, Any]
) -> None:
    result = component_compliance(
        "rpo-test",
        _facts(local_target, [{"name": "replica-1", "conn_id": "rpo_replica", "region": "us-east-1"}]),
        datetime.now(UTC),
    )
    assert result["compliant"] is True
    assert result["best_source"] == "replica:replica-1"
    assert result["achievable_rpo_s"] < 60
    assert result["achievable_from_store_s"] is None and result["copies_by_region"] == {}
    assert result["notes"] == [
        "only replica:replica-1 keeps the RPO: a deletion or corruption would be replicated, and there is "
        "no stored recovery point (backup or archived WAL) at all"
    ]


def test_a_fresh_backup_is_a_stored_recovery_point_and_ages(
    pair_conns: tuple[LocalCluster, LocalCluster], local_target: dict[str, Any]
) -> None:
    primary, _ = pair_conns
    manifest = take_full_backup(
        full_backup_request(
            primary,
            [local_target],
            "20261127T000000Z-daily-full-rpo001",
            spec_name="rpo-test",
            component="user-database",
        )
    )
    facts = _facts({**local_target, "region": "us-east-1"}, [])
    now = manifest.finished_at + timedelta(seconds=30)
    fresh = component_compliance("rpo-test", facts, now)
    assert fresh["compliant"] and fresh["best_source"] == "backup:test-local"
    assert fresh["copies_by_region"] == {"us-east-1": ["test-local"]}  # where its recovery points live
    assert fresh["achievable_rpo_s"] == pytest.approx(30, abs=0.01)

    stale = rpo_compliance("rpo-test", [facts], manifest.finished_at + timedelta(hours=2))
    assert stale["compliant"] is False
    assert stale["components"][0]["achievable_rpo_s"] == pytest.approx(7200, abs=0.01)


def test_no_source_at_all_is_out_of_compliance_with_a_reason(local_target: dict[str, Any]) -> None:
    result = component_compliance("rpo-test", _facts(local_target, []), datetime.now(UTC))
    assert result["compliant"] is False and result["achievable_rpo_s"] is None
    assert "no source of recovery points" in result["notes"][0]
