"""Replication mode by criticality: the watch of a critical component against a real synchronous standby."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.replication_watch import ReplicationWatch
from drflow.plan.replication import replication_watch_plan
from drflow.spec.load import load_spec_text
from tests.fixtures.pg import airflow_conn_json

pytestmark = pytest.mark.slow

STANDBY = "test_replica"  # pg_primary_with_replica's standby streams under its slot name
SPEC = """\
version: 1
metadata: {name: sync-test, owner: test-team}
regions: [{name: east, role: primary}, {name: west}]
components:
  - name: payments
    criticality: critical
    rto: 30m
    rpo: 5m
    datastore:
      type: postgres
      database: postgres
      primary: {conn_id: sync_pg_primary, region: east}
      replicas: [{name: replica-1, conn_id: sync_pg_replica, region: west, slot: test_replica}]
"""


def sql(cluster: LocalCluster, query: str) -> Any:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
        cursor = conn.execute(query)
        row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None


def configure(primary: LocalCluster, *statements: str) -> None:
    for statement in statements:
        sql(primary, statement)
    sql(primary, "select pg_reload_conf()")


def wait_sync_state(primary: LocalCluster, wanted: str | None) -> None:
    """Until the standby shows ``wanted`` in pg_stat_replication (None: until no standby is listed)."""
    deadline = time.monotonic() + 15
    query = f"select sync_state from pg_stat_replication where application_name = '{STANDBY}'"
    while sql(primary, query) != wanted:
        assert time.monotonic() < deadline, f"the standby did not become {wanted or 'absent'}"
        time.sleep(0.05)


def test_a_critical_component_alerts_when_its_primary_falls_back_or_loses_its_synchronous_standby(
    tmp_path: Path, pg_primary_with_replica: tuple[LocalCluster, LocalCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, replica = pg_primary_with_replica
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_PG_PRIMARY", airflow_conn_json(primary))
    monkeypatch.setenv("AIRFLOW_CONN_SYNC_PG_REPLICA", airflow_conn_json(replica))
    spec = load_spec_text(SPEC, tmp_path / "sync-test.yaml").spec
    assert spec.components[0].replication_mode == "synchronous"  # critical data: the seed's default
    plan = replication_watch_plan(spec, spec.components[0], "sync-test.yaml")
    assert plan is not None
    watch = ReplicationWatch.from_params(plan.task("check_replication").params["watch"])
    assert watch.synchronous

    configure(primary, f"alter system set synchronous_standby_names = 'FIRST 1 ({STANDBY})'")
    wait_sync_state(primary, "sync")
    healthy = watch.measure()
    assert healthy.healthy and healthy.alerts == []
    assert healthy.synchronous is not None
    [standby] = healthy.synchronous["standbys"]
    assert standby == {"application_name": STANDBY, "state": "streaming", "sync_state": "sync"}

    # What an HA manager does when it relaxes synchronous mode: the primary stops waiting, nobody is told.
    configure(primary, "alter system reset synchronous_standby_names")
    wait_sync_state(primary, "async")
    fallback = watch.measure()
    assert fallback.codes() == {"sync_fallback"} and not fallback.healthy
    [alert] = fallback.alerts
    assert alert.severity == "critical" and "has fallen back to asynchronous" in alert.message
    assert f"synchronous_standby_names = 'FIRST 1 ({STANDBY}, replica-1)'" in alert.message

    configure(
        primary,
        f"alter system set synchronous_standby_names = 'FIRST 1 ({STANDBY})'",
        "alter system set synchronous_commit = 'local'",
    )
    wait_sync_state(primary, "sync")
    local = watch.measure()
    assert local.codes() == {"sync_fallback"} and "synchronous_commit is 'local'" in local.alerts[0].message
    configure(primary, "alter system reset synchronous_commit")

    replica.stop("immediate")
    wait_sync_state(primary, None)
    lost = watch.measure()
    assert {"no_sync_standby", "replica_unreachable"} <= lost.codes() and not lost.healthy
    [missing] = [a for a in lost.alerts if a.code == "no_sync_standby"]
    assert missing.severity == "critical"
    assert "0 synchronous standby(s) of the 1" in missing.message and "no standby is connected" in missing.message

    # A high (asynchronous by default) component on the same cluster: its primary still waits for the stopped
    # synchronous standby, so every commit hangs, whatever the spec says; that alone is an alert.
    high = SPEC.replace("criticality: critical", "criticality: high")
    relaxed = load_spec_text(high, tmp_path / "sync-test.yaml").spec
    relaxed_plan = replication_watch_plan(relaxed, relaxed.components[0], "sync-test.yaml")
    assert relaxed_plan is not None
    relaxed_watch = ReplicationWatch.from_params(relaxed_plan.task("check_replication").params["watch"])
    assert not relaxed_watch.synchronous
    hanging = relaxed_watch.measure()
    assert "no_sync_standby" in hanging.codes() and "sync_fallback" not in hanging.codes()
    [waits] = [a for a in hanging.alerts if a.code == "no_sync_standby"]
    assert waits.message.startswith("the spec asks for asynchronous replication of this data, but the primary is")
    # Asynchronous, as the spec asks: nothing to say about synchronous replication.
    configure(primary, "alter system reset synchronous_standby_names")
    assert not {"no_sync_standby", "sync_fallback"} & relaxed_watch.measure().codes()
