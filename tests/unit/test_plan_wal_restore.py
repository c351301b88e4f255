"""Plans of incremental (WAL) backup DAGs and restore DAGs, built without Airflow."""

from __future__ import annotations

from drflow.contracts import BackupRun
from drflow.plan.build import build_plans
from drflow.render.actions import ACTIONS
from drflow.spec.load import load_spec_text
from drflow.spec.model import Spec

SPEC = """\
version: 1
metadata: {{name: shop, owner: ops}}
regions: [{{name: east, role: primary}}]
storage:
  - {{name: local-a, type: local, path: /srv/backups/a}}
  - {{name: local-b, type: local, path: /srv/backups/b}}
components:
  - name: user-database
    criticality: critical
    rto: 30m
    rpo: 5m
    datastore:
      type: postgres
      database: users
      primary: {{conn_id: pg_primary, region: east}}
    backups:
{backups}
  - name: static-site
    criticality: low
    rto: 1d
    rpo: 1d
"""
PRESET = "      - {preset: database, targets: [local-a], retention: {days: 14}}"


def _spec(backups: str = PRESET) -> Spec:
    return load_spec_text(SPEC.format(backups=backups), "shop.yaml").spec


def test_the_database_preset_gives_an_hourly_wal_dag_that_archives_then_checks_the_chain() -> None:
    plans = {p.dag_id: p for p in build_plans(_spec(), "shop.yaml")}
    wal = plans["dr.shop.user-database.backup.hourly-wal"]
    assert wal.kind == "backup" and wal.schedule == "@hourly"
    assert [t.task_id for t in wal.tasks] == ["check_source", "archive_wal", "check_wal_chain", "check_slots"]
    check, archive, chain, slots = wal.tasks
    assert (check.action, archive.action, chain.action, slots.action) == (
        "postgres.check_source",
        "postgres.wal_archive",
        "store.check_wal_chain",
        "postgres.check_slots",
    )
    assert archive.upstream == ("check_source",) and chain.upstream == ("archive_wal",)
    # The slot watch runs beside the archive: a slot holding too much never stops the run that frees it.
    assert slots.upstream == ("check_source",) and slots.retries == 0
    # The default slot carries 6 hex of the spec name: two specs never share it on one cluster.
    assert archive.params["slot"] == "drflow_wal_8d9001_user_database_hourly_wal"
    assert slots.params["slot_watch"]["claims"] == [
        {
            "slot": "drflow_wal_8d9001_user_database_hourly_wal",
            "conn_id": "pg_primary",
            "kind": "wal",
            "spec": "shop",
            "component": "user-database",
            "owner": "WAL policy hourly-wal",
            "limit_bytes": 10 * 1024**3,
        }
    ]
    assert slots.params["slot_watch"]["orphan_prefixes"] == ["drflow_wal_8d9001_"]
    run = BackupRun.from_params(archive.params["run"])
    assert run.policy == "hourly-wal" and run.compression == "zstd" and run.validation == ()
    assert run.conn_id == "pg_primary" and run.database == "users"
    assert [t["name"] for t in run.targets] == ["local-a"]
    assert chain.params["expected_interval_s"] == 3600 and chain.params["rpo_s"] == 300
    assert all(t.action in ACTIONS for t in wal.tasks)


def test_a_wal_policy_can_name_its_slot_and_schedule() -> None:
    backups = (
        "      - {name: wal, type: incremental, method: pg_receivewal, schedule: '*/5 * * * *',\n"
        "         slot: users_wal, compression: none, targets: [local-b], retention: {days: 3}}"
    )
    plans = {p.dag_id: p for p in build_plans(_spec(backups), "shop.yaml")}
    wal = plans["dr.shop.user-database.backup.wal"]
    archive = wal.task("archive_wal")
    assert (archive.params["slot"], archive.params["run"]["compression"]) == ("users_wal", "none")
    assert wal.task("check_wal_chain").params["expected_interval_s"] == 300
    assert "dr.shop.user-database.restore" not in plans  # WAL alone has no base backup to restore


def test_components_with_backups_get_a_manual_restore_dag_with_a_trigger_form() -> None:
    plans = build_plans(_spec(), "shop.yaml")
    restores = [p for p in plans if p.kind == "restore"]
    assert [p.dag_id for p in restores] == ["dr.shop.user-database.restore"]
    [restore] = restores
    assert restore.schedule is None and restore.schedule_every_s is None
    assert [t.task_id for t in restore.tasks] == ["plan_restore", "restore", "verify_restored"]
    assert restore.task("restore").upstream == ("plan_restore",)
    assert restore.task("verify_restored").upstream == ("restore",)
    assert restore.task("plan_restore").retries == 0
    assert all(t.action in ACTIONS for t in restore.tasks)
    assert set(restore.params) == {"backup_id", "target_time", "target_lsn", "restore_to", "start", "storage_target"}
    assert restore.params["start"] == {
        "default": False,
        "type": "boolean",
        "title": "Start the server",
        "description": "Leave PostgreSQL running on the restored data (on a free port).",
    }
    assert restore.params["storage_target"]["enum"] == ["local-a"]
    assert restore.params["target_lsn"]["pattern"].startswith("^[0-9A-Fa-f]")
    assert [t["name"] for t in restore.task("restore").params["targets"]] == ["local-a"]
    assert "kind:restore" in restore.tags and "priority:critical" in restore.tags
    assert "--target-time" in restore.doc_md
