"""Replication slots have an owner: retained WAL against the spec's limit, orphans, `drflow slots list|drop`,
on a real PostgreSQL primary (and the WAL policy's check_slots task through Airflow's dag.test())."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.slots import assess_slots, read_slots
from drflow.engines.postgres.wal import ensure_slot
from drflow.spec.load import load_spec
from drflow.spec.slots import legacy_wal_slot_name, spec_claims, spec_tag, wal_slot_name
from tests.fixtures.airflow import dagbag
from tests.fixtures.pg import airflow_conn_env, create_database

SPEC = """\
version: 1
metadata: {{name: {name}, owner: test-team}}
defaults: {{retries: 0}}
regions: [{{name: us-east-1, role: primary}}]
storage:
  - {{name: local, type: local, path: {store}, region: us-east-1}}
components:
  - name: orders
    criticality: low
    rto: 1h
    rpo: 1h
    datastore:
      type: postgres
      database: shop
      bin_dir: {bin_dir}
      primary: {{conn_id: test_slots_primary, region: us-east-1}}
      slot_retention_limit: {limit}
    backups:
      - {{name: nightly, type: full, method: pg_basebackup, schedule: "@daily", targets: [local],
          retention: {{days: 7}}}}
      - {{name: wal, type: incremental, method: pg_receivewal, schedule: "@hourly", targets: [local],
          retention: {{days: 7}}}}
"""
CONN_ID = "test_slots_primary"


@pytest.fixture
def primary(pg_primary: LocalCluster) -> Iterator[LocalCluster]:
    create_database(pg_primary, "shop")
    with airflow_conn_env(CONN_ID, pg_primary):
        yield pg_primary


def _write_spec(path: Path, cluster: LocalCluster, *, limit: str = "10GiB", name: str = "slots-test") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SPEC.format(name=name, store=path.parent / "store", bin_dir=cluster.bin_dir, limit=limit))
    return path


def _make_wal(cluster: LocalCluster, megabytes: int) -> None:
    """Write about ``megabytes`` of WAL (whole segments, by switching)."""
    with psycopg.connect(**cluster.conninfo("shop").libpq_kwargs(), autocommit=True) as conn:
        conn.execute("create table if not exists filler (n int)")
        for _ in range(max(1, megabytes // 16)):
            conn.execute("insert into filler values (1)")
            conn.execute("select pg_switch_wal()")


def _slots(cluster: LocalCluster) -> set[str]:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs()) as conn:
        return {str(r[0]) for r in conn.execute("select slot_name from pg_replication_slots").fetchall()}


def _cli(*args: str) -> Any:
    from drflow.cli import app

    return CliRunner().invoke(app, list(args))


def test_retained_wal_over_the_limit_of_the_spec_raises_the_alert(primary: LocalCluster, pg_workdir: Path) -> None:
    spec_path = _write_spec(pg_workdir / "specs" / "shop.yaml", primary, limit="20MiB")
    spec = load_spec(spec_path).spec
    slot = wal_slot_name("slots-test", "orders", "wal")
    ensure_slot(primary.conninfo(), slot)  # what the WAL policy's first run does
    claims = spec_claims(spec)

    [report] = assess_slots(read_slots(primary.conninfo()), claims, orphan_limit_bytes=20 * 1024**2)
    assert (report.name, report.state, report.kind) == (slot, "in use", "wal")
    assert report.alerts == []  # under the limit: nothing to say

    _make_wal(primary, 48)  # the archive DAG is "failing": nobody advances the slot
    [report] = assess_slots(read_slots(primary.conninfo()), claims, orphan_limit_bytes=20 * 1024**2)
    assert report.retained_bytes is not None and report.retained_bytes > 20 * 1024**2
    [alert] = report.alerts
    assert (alert.code, alert.severity) == ("slot_retention_exceeded", "critical")
    assert f"'{slot}' of WAL policy wal of slots-test/orders holds back" in alert.message
    assert "more than its limit of 20MiB" in alert.message and "Run the WAL policy's DAG" in alert.message

    # The CLI says the same (and machine-readably).
    result = _cli("slots", "list", "--spec", str(spec_path), "--json")
    assert result.exit_code == 0, result.output
    [cluster] = json.loads(result.stdout)
    assert cluster["primary"] == "test_slots_primary" and cluster["components"] == ["orders"]
    [listed] = cluster["slots"]
    assert listed["name"] == slot and listed["limit_bytes"] == 20 * 1024**2
    assert [a["code"] for a in listed["alerts"]] == ["slot_retention_exceeded"]


def test_orphans_are_listed_and_slots_drop_refuses_what_it_must(primary: LocalCluster, pg_workdir: Path) -> None:
    spec_path = _write_spec(pg_workdir / "specs" / "shop.yaml", primary)
    current = wal_slot_name("slots-test", "orders", "wal")
    removed = wal_slot_name("slots-test", "orders", "old-wal")  # a policy since removed from the spec
    legacy = legacy_wal_slot_name("orders")  # drflow's default name before it carried the spec
    conn = primary.conninfo()
    for slot in (current, removed, legacy, "someone_elses"):
        ensure_slot(conn, slot)

    result = _cli("slots", "list", "--spec", str(spec_path))
    assert result.exit_code == 0, result.output
    by_name = {
        r["name"]: r for r in json.loads(_cli("slots", "list", "--spec", str(spec_path), "--json").stdout)[0]["slots"]
    }
    assert by_name[current]["state"] == "in use" and by_name[current]["alerts"] == []
    assert by_name[removed]["state"] == "orphan" and by_name[legacy]["state"] == "orphan"
    assert by_name[legacy]["note"] == f"old-style WAL slot name of orders, now {current}"
    assert by_name["someone_elses"]["state"] == "not drflow's" and by_name["someone_elses"]["alerts"] == []
    [orphaned] = by_name[removed]["alerts"]
    assert orphaned["code"] == "slot_orphaned" and orphaned["severity"] == "warning"
    assert f"drflow slots drop --spec {spec_path} --component orders --slot {removed}" in orphaned["message"]
    # The table names each orphan, and the warning says how to drop it.
    assert removed in result.output and "orphan" in result.output and "slot_orphaned" in result.output

    dropped = _cli("slots", "drop", "--spec", str(spec_path), "--component", "orders", "--slot", removed)
    assert dropped.exit_code == 0, dropped.output
    assert f"dropped replication slot '{removed}' (an orphan)" in dropped.output

    refused = _cli("slots", "drop", "--spec", str(spec_path), "--component", "orders", "--slot", current)
    assert refused.exit_code == 1
    assert "is used by WAL policy wal of slots-test/orders; nothing was dropped" in refused.output
    assert "pass --force" in refused.output

    foreign = _cli("slots", "drop", "--spec", str(spec_path), "--component", "orders", "--slot", "someone_elses")
    assert foreign.exit_code == 1 and "is not drflow's" in foreign.output and "nothing was dropped" in foreign.output

    absent = _cli("slots", "drop", "--spec", str(spec_path), "--component", "orders", "--slot", removed)
    assert absent.exit_code == 1 and "there is no replication slot" in absent.output
    assert _slots(primary) == {current, legacy, "someone_elses"}

    # A slot something streams from is refused even with --force.
    staging = pg_workdir / "receive"
    staging.mkdir()
    primary.host.chown_to_db_user(staging)
    receiver = subprocess.Popen(
        [str(primary.bin_dir / "pg_receivewal"), "-D", str(staging), "-S", legacy, "--no-loop", "-d", conn.dsn()],
        env={**os.environ, **conn.env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row = read_slots(conn)
            if any(r.name == legacy and r.active for r in row):
                break
            time.sleep(0.1)
        busy = _cli("slots", "drop", "--spec", str(spec_path), "--component", "orders", "--slot", legacy)
        assert busy.exit_code == 1 and "is in use" in busy.output and "nothing was dropped" in busy.output
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)

    forced = _cli("slots", "drop", "--spec", str(spec_path), "--component", "orders", "--slot", current, "--force")
    assert forced.exit_code == 0, forced.output
    assert "used by WAL policy wal of slots-test/orders, dropped with --force" in forced.output
    assert "creates the slot again" in forced.output
    assert current not in _slots(primary)


@pytest.mark.slow
def test_check_slots_task_fails_the_wal_dag_on_a_slot_over_the_limit_while_the_archive_runs(
    airflow_db: Path, specs_dir_env: Path, primary: LocalCluster
) -> None:
    _write_spec(specs_dir_env / "shop.yaml", primary, limit="20MiB")
    # A WAL policy removed from this spec left its slot behind, and it keeps WAL forever.
    orphan = f"drflow_wal_{spec_tag('slots-test')}_orders_removed"
    ensure_slot(primary.conninfo(), orphan)
    _make_wal(primary, 48)
    bag = dagbag()
    assert bag.import_errors == {}
    assert bag.dags["dr.slots-test.orders.backup.nightly"].test().state == "success"
    wal_dag = bag.dags["dr.slots-test.orders.backup.wal"]
    assert wal_dag.task_dict["check_slots"].upstream_task_ids == {"check_source"}
    run = wal_dag.test()
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    # The archive (which frees its own slot) ran and stored WAL; the watch failed, naming the orphan.
    assert states == {
        "check_source": "success",
        "archive_wal": "success",
        "check_wal_chain": "success",
        "check_slots": "failed",
    }
    assert orphan in _slots(primary)  # a check never drops anything


def test_an_upgraded_deployment_keeps_its_wal_chain_and_is_told_to_drop_the_old_slot(
    pg_primary: LocalCluster, tmp_path: Path
) -> None:
    """Before slot names carried the spec, a WAL policy's slot was drflow_wal_<component>: the first run
    with the new name must still find the WAL since the chain's tip (the old slot holds it), and the old
    slot must be reported, not dropped behind the operator's back."""
    import dataclasses

    from drflow.jobs.backup import take_full_backup
    from drflow.jobs.wal import archive_wal
    from drflow.spec.slots import SlotClaim
    from tests.integration.test_wal_pitr import COMPONENT, SPEC, _create_users_db, full_request, wal_request

    target = {"name": "local", "type": "local", "path": str(tmp_path / "store")}
    _create_users_db(pg_primary)
    with psycopg.connect(**pg_primary.conninfo().libpq_kwargs(), autocommit=True) as db:
        db.execute("alter system set wal_keep_size = 0")  # only slots keep WAL: a gap would show
        db.execute("select pg_reload_conf()")
    take_full_backup(full_request(pg_primary, [target], "20261127T100000Z-daily-full-eeeeee"))
    old = archive_wal(wal_request(pg_primary, [target], "20261127T101000Z-wal-eeeeee"))  # the old slot name
    legacy = legacy_wal_slot_name(COMPONENT)
    assert old.extra["slot"] == legacy
    with psycopg.connect(**pg_primary.conninfo(COMPONENT).libpq_kwargs(), autocommit=True) as db:
        for _ in range(3):
            db.execute("insert into events (note) values ('after the upgrade')")
            db.execute("select pg_switch_wal()")
            db.execute("checkpoint")

    new = wal_slot_name(SPEC, COMPONENT, "wal")
    upgraded = archive_wal(
        dataclasses.replace(wal_request(pg_primary, [target], "20261127T102000Z-wal-eeeeee"), slot=new)
    )
    assert upgraded.extra["slot"] == new and upgraded.extra["slot_created"] is True
    assert upgraded.parent_id == old.backup_id and upgraded.start_lsn == old.end_lsn
    assert "restarted_after_gap" not in upgraded.extra

    claim = SlotClaim(new, "pg", "wal", SPEC, COMPONENT, "WAL policy wal", 10 * 1024**3)
    reports = {
        r.name: r
        for r in assess_slots(read_slots(pg_primary.conninfo()), [claim], orphan_limit_bytes=1, components=[COMPONENT])
    }
    assert reports[new].state == "in use"
    assert (reports[legacy].state, reports[legacy].note) == (
        "orphan",
        f"old-style WAL slot name of {COMPONENT}, now {new}",
    )
    assert [a.code for a in reports[legacy].alerts] == ["slot_orphaned", "slot_retention_exceeded"]
    assert legacy in _slots(pg_primary)  # reported, never dropped by drflow on its own
