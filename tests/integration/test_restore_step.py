"""The recovery plans' restore step with real PostgreSQL and a local store: which backup, retries, refusals."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drflow.engines.postgres.cluster import LocalCluster
from drflow.hosts import Host
from drflow.jobs.backup import take_full_backup
from drflow.operators.restore_step import PITR_NEEDS_WAL, RestoreRefused, restore_component, restore_root
from tests.fixtures.backups import full_backup_request
from tests.plan_inputs import restore_inputs

pytestmark = pytest.mark.slow

SPEC = "restore-step-test"


def backup(cluster: LocalCluster, target: dict[str, Any], backup_id: str) -> None:
    take_full_backup(full_backup_request(cluster, [target], backup_id, database="users", spec_name=SPEC))


def count(port: int) -> int:
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="users", connect_timeout=5) as conn:
        row = conn.execute("select count(*) from accounts").fetchone()
    assert row is not None
    return int(row[0])


def inputs(target: dict[str, Any], bin_dir: Path, overrides: dict[str, Any] | None = None, **step: Any) -> Any:
    """restore_component's step and plan, as the plan builder writes them for a restore step."""
    definition, facts = restore_inputs(
        spec_name=SPEC,
        component="users",
        database="users",
        bin_dir=bin_dir,
        targets=[target],
        step={"name": "restore-clean", **step},
        **(overrides or {}),
    )
    return {"step": definition, "plan": facts}


@pytest.fixture
def run_key(pg_host: Host, pg_bin_dir: Path) -> Iterator[str]:
    key = f"test-{datetime.now(UTC):%H%M%S%f}"
    yield key
    path = restore_root(None, SPEC, "users", key)
    pg_host.run(
        [str(pg_bin_dir / "pg_ctl"), "stop", "-D", str(path / "data"), "-m", "immediate"], check=False, as_db_user=True
    )
    shutil.rmtree(path, ignore_errors=True)


def test_before_incident_restores_the_newest_backup_finished_before_it_and_a_retry_starts_clean(
    pg_primary: LocalCluster, local_target: dict[str, Any], run_key: str
) -> None:
    with psycopg.connect(**pg_primary.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute("create database users")
    with psycopg.connect(**pg_primary.conninfo("users").libpq_kwargs(), autocommit=True) as conn:
        conn.execute("create table accounts (id bigint primary key)")
        conn.execute("insert into accounts select generate_series(1, 100)")
        backup(pg_primary, local_target, "20260101T0000Z-daily-full-aaaaaa")
        incident = datetime.now(UTC)
        conn.execute("insert into accounts select generate_series(101, 150)")  # the attacker's rows
        backup(pg_primary, local_target, "20260101T0100Z-daily-full-bbbbbb")

    step = inputs(local_target, pg_primary.bin_dir, before_incident=True)
    params = {"incident_started_at": incident.isoformat()}
    first = restore_component(**step, params=params, run_key=run_key)
    assert first["backup_id"] == "20260101T0000Z-daily-full-aaaaaa"
    assert count(first["restored"]["port"]) == 100

    again = restore_component(**step, params=params, run_key=run_key)  # a retry of the same run
    assert again["restored"]["data_directory"] == first["restored"]["data_directory"]
    assert count(again["restored"]["port"]) == 100

    newest = restore_component(**inputs(local_target, pg_primary.bin_dir), params={}, run_key=run_key)
    assert newest["backup_id"] == "20260101T0100Z-daily-full-bbbbbb" and count(newest["restored"]["port"]) == 150


def test_refusals_say_what_would_unblock_them(local_target: dict[str, Any], pg_bin_dir: Path, run_key: str) -> None:
    before = inputs(local_target, pg_bin_dir, before_incident=True)
    with pytest.raises(RestoreRefused, match="no incident_started_at; to proceed: trigger the plan again"):
        restore_component(**before, params={}, run_key=run_key)
    with pytest.raises(RestoreRefused, match="no complete backup finished before the incident"):
        restore_component(**before, params={"incident_started_at": "2020-01-01T00:00:00Z"}, run_key=run_key)
    with pytest.raises(RestoreRefused, match="no complete pg_basebackup backup"):
        restore_component(**inputs(local_target, pg_bin_dir), params={}, run_key=run_key)
    # Validation asks for a WAL policy first; without archived WAL the operator refuses too.
    pitr = inputs(local_target, pg_bin_dir, overrides={"point_in_time": True})
    with pytest.raises(RestoreRefused, match=re.escape(PITR_NEEDS_WAL)):
        restore_component(**pitr, params={"target_time": "2026-01-01T00:00:00Z"}, run_key=run_key)
    # Validation refuses a target the component's policies do not use; the operator refuses it too.
    elsewhere = inputs(local_target, pg_bin_dir, overrides={"target": "elsewhere"})
    with pytest.raises(RestoreRefused, match="storage target 'elsewhere' receives no backups"):
        restore_component(**elsewhere, params={}, run_key=run_key)
