"""`drflow restore` falls back to an intact copy of the same backup in another storage target.

Real PostgreSQL, a moto S3 server over HTTP as the first target and a local directory as the
second; the real CLI through typer's runner.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from drflow.cli import app
from drflow.engines.postgres.cluster import LocalCluster
from drflow.hosts import Host, LocalHost
from drflow.jobs.backup import take_full_backup
from drflow.jobs.drill import drill_verdict, run_restore_drill
from drflow.jobs.logical import LogicalBackupRequest, take_logical_backup
from drflow.jobs.pitr import execute_planned, plan_from_form
from drflow.jobs.restore import find_copies, start_scratch_instance
from drflow.operators.restore_step import RestoreRefused, clear_earlier_try, restore_component
from drflow.store.catalog import Catalog
from drflow.store.factory import target_catalogs
from drflow.store.manifest import BackupManifest
from tests.fixtures.backups import full_backup_request
from tests.plan_inputs import restore_inputs

pytestmark = pytest.mark.slow

SPEC = "fallback-spec"
COMPONENT = "users"


@dataclass
class Stored:
    primary: LocalCluster
    spec: Path
    targets: list[dict[str, Any]]
    older: BackupManifest
    newer: BackupManifest
    dump: BackupManifest
    rows_at_newer: int

    def catalog(self, name: str) -> Catalog:
        return dict(target_catalogs(SPEC, self.targets))[name]

    def corrupt(self, name: str, backup: BackupManifest, object_name: str = "base.tar.zst") -> None:
        catalog = self.catalog(name)
        key = catalog.object_key(COMPONENT, backup.backup_id, object_name)
        data = catalog.store.get_bytes(key)
        catalog.store.put_bytes(key, data[:200] + bytes([data[200] ^ 0xFF]) + data[201:])


def _count(cluster: LocalCluster) -> int:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
        row = conn.execute("select count(*) from t").fetchone()
    assert row is not None
    return int(row[0])


def _insert(cluster: LocalCluster, rows: int) -> None:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute("create table if not exists t (id int)")
        conn.execute("insert into t select generate_series(1, %s)", (rows,))


@pytest.fixture
def stored(pg_primary: LocalCluster, s3_target: dict[str, Any], tmp_path: Path) -> Stored:
    first = {**s3_target, "name": "s3-first"}
    second = {"name": "local-second", "type": "local", "path": str(tmp_path / "store")}
    targets = [first, second]

    def full(backup_id: str) -> BackupManifest:
        return take_full_backup(
            full_backup_request(pg_primary, targets, backup_id, spec_name=SPEC, component=COMPONENT)
        )

    _insert(pg_primary, 100)
    older = full("20261127T000000Z-daily-full-old111")
    _insert(pg_primary, 250)
    newer = full("20261128T000000Z-daily-full-new222")
    dump = take_logical_backup(
        LogicalBackupRequest(
            spec_name=SPEC,
            component=COMPONENT,
            policy="nightly-dump",
            backup_id="20261128T010000Z-nightly-dump-ddd333",
            conn=pg_primary.conninfo(),
            bin_dir=pg_primary.bin_dir,
            targets=targets,
            compression="zstd",
            retention_days=7,
            retention_policy="standard",
        )
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nmetadata: {{name: {SPEC}, owner: ops}}\nregions: [{{name: {first['region']}, role: primary}}]\n"
        "storage:\n"
        f"  - {{name: s3-first, type: s3, bucket: {first['bucket']}, conn_id: {first['conn_id']}, "
        f"region: {first['region']}, prefix: {first['prefix']}}}\n"
        f"  - {{name: local-second, type: local, path: {second['path']}}}\n"
        "components:\n  - name: users\n    criticality: high\n    rto: 1h\n    rpo: 1d\n"
        "    datastore: {type: postgres, database: postgres, bin_dir: "
        f"{pg_primary.bin_dir}, primary: {{conn_id: pg, region: {first['region']}}}}}\n"
        "    backups: [{preset: database, targets: [s3-first, local-second], retention: {days: 7}}]\n"
    )
    return Stored(pg_primary, spec, targets, older, newer, dump, _count(pg_primary))


def _restore(stored: Stored, dest: Path, *extra: str) -> Any:
    args = ["restore", "--spec", str(stored.spec), "--component", COMPONENT, "--to", str(dest), *extra]
    return CliRunner().invoke(app, args)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_restore_uses_the_same_backup_from_the_second_target_when_the_first_copy_is_corrupt(
    stored: Stored, pg_workdir: Path, pg_host: Host
) -> None:
    stored.corrupt("s3-first", stored.newer)
    dest = pg_workdir / "restored"
    result = _restore(stored, dest)
    assert result.exit_code == 0, result.output
    output = _one_line(result.output)
    assert f"skipped the copy of backup {stored.newer.backup_id} in s3-first" in output
    assert "is corrupt" in output and "base.tar.zst" in output
    assert f"restored backup {stored.newer.backup_id} of users from local-second" in output
    instance = start_scratch_instance(dest, host=pg_host, bin_dir=stored.primary.bin_dir)
    try:
        assert _count(instance) == stored.rows_at_newer
    finally:
        instance.stop(mode="immediate")


def test_with_no_intact_copy_restore_refuses_and_suggests_the_newest_intact_older_backup(
    stored: Stored, pg_workdir: Path
) -> None:
    stored.corrupt("s3-first", stored.newer)
    stored.corrupt("local-second", stored.newer)
    dest = pg_workdir / "never-created"
    result = _restore(stored, dest)
    assert result.exit_code == 1, result.output
    output = _one_line(result.output)
    assert f"no intact copy of backup {stored.newer.backup_id}; nothing was restored" in output
    assert "s3-first, local-second: object base.tar.zst is corrupt" in output
    assert output.count("is corrupt") == 1, "one line per distinct problem, not one per target"
    assert f"restore it with --backup {stored.older.backup_id}" in output
    assert "Traceback" not in result.output
    assert not dest.exists()  # a refused restore leaves no directory behind

    result = _restore(stored, dest, "--backup", stored.older.backup_id)
    assert result.exit_code == 0, result.output
    assert f"restored backup {stored.older.backup_id} of users from s3-first" in _one_line(result.output)


def test_short_errors_name_only_restorable_backups_and_a_file_as_a_file(stored: Stored, pg_workdir: Path) -> None:
    result = _restore(stored, pg_workdir / "x", "--backup", "20261201T000000Z-daily-full-nope00")
    assert result.exit_code == 1
    output = _one_line(result.output)
    assert "no storage target holds it" in output
    assert stored.newer.backup_id in output and stored.older.backup_id in output
    assert stored.dump.backup_id not in output, "a dump is no --backup candidate for this restore"
    assert output.count("no storage target holds it") == 1, "one line, not one per target"

    result = _restore(stored, pg_workdir / "x", "--backup", stored.dump.backup_id)
    assert result.exit_code == 1 and "restore-table" in result.output

    port = stored.primary.port
    table = ["restore-table", "--spec", str(stored.spec), "--component", COMPONENT, "--table", "t"]
    result = CliRunner().invoke(
        app, [*table, "--dsn", f"host=127.0.0.1 port={port} user=postgres", "--backup", stored.newer.backup_id]
    )
    assert result.exit_code == 1
    output = _one_line(result.output)
    assert "it is a full pg_basebackup backup, not a pg_dump backup; restore it whole with `drflow restore`" in output
    assert f"pg_dump backups, newest first: {stored.dump.backup_id}" in output
    assert stored.older.backup_id not in output, "a base backup is no --backup candidate for restore-table"
    assert output.count("cannot restore a table") == 1, "one line, not one per target"

    # For a database --at is the target time of a point-in-time recovery, never ignored.
    result = _restore(stored, pg_workdir / "x", "--at", "2026-11-28T00:30:00Z")
    assert result.exit_code == 1
    assert "nothing is recoverable to a point in time there" in _one_line(result.output)
    result = _restore(stored, pg_workdir / "x", "--at", "2026-11-28T00:30:00Z", "--target-time", "2026-11-28T00:40:00Z")
    assert result.exit_code == 1 and "disagree; give one of them" in _one_line(result.output)
    assert not (pg_workdir / "x").exists()

    a_file = pg_workdir / "a-file"
    a_file.write_text("not a directory")
    result = _restore(stored, a_file)
    assert result.exit_code == 1 and "is a file" in result.output
    assert a_file.read_text() == "not a directory"


def test_backups_list_shows_which_targets_hold_a_copy(stored: Stored) -> None:
    stored.catalog("s3-first").discard(COMPONENT, stored.newer.backup_id)
    result = CliRunner().invoke(app, ["backups", "list", "--spec", str(stored.spec), "--component", COMPONENT])
    assert result.exit_code == 0, result.output
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines() if "│" in line]
    lines = {row[1]: row[-2:] for row in cells}
    assert lines[stored.newer.backup_id] == ["-", "yes"]  # columns s3-first, local-second
    assert lines[stored.older.backup_id] == ["yes", "yes"]
    assert "s3-first" in result.output and "local-second" in result.output

    # The restore still finds the newest backup, in the one target that holds it.
    listed = CliRunner().invoke(
        app, ["backups", "list", "--spec", str(stored.spec), "--component", COMPONENT, "--json"]
    )
    assert listed.exit_code == 0, listed.output
    # Airflow's log lines (when an earlier test configured its logging) may precede the JSON document.
    document = listed.stdout[listed.stdout.index("\n[") + 1 :] if not listed.stdout.startswith("[") else listed.stdout
    copies = [(row["backup_id"], row["target"]) for row in json.loads(document)]
    assert (stored.newer.backup_id, "local-second") in copies
    assert (stored.newer.backup_id, "s3-first") not in copies


def test_a_drill_restores_from_the_second_copy_and_fails_naming_the_copy_to_repair(
    stored: Stored, pg_host: Host
) -> None:
    stored.corrupt("s3-first", stored.newer)
    choice = find_copies(target_catalogs(SPEC, stored.targets), COMPONENT)
    assert choice.backup_id == stored.newer.backup_id
    validation = [{"name": "rows", "query": "select count(*) from t", "expected": str(stored.rows_at_newer)}]
    result = run_restore_drill(
        choice, database="postgres", validation=validation, host=pg_host, bin_dir=stored.primary.bin_dir
    )
    assert result["storage_target"] == "local-second" and result["checks"][0]["passed"]
    [skipped] = result["skipped_copies"]
    assert "in s3-first: object base.tar.zst is corrupt" in skipped
    verdict = drill_verdict(result, rto_s=3600, rpo_s=86400)
    assert not verdict["passed"]
    assert any("repair that copy" in p and "s3-first" in p for p in verdict["problems"])


def test_a_plan_restore_step_falls_back_and_a_refused_one_leaves_no_run_directory(stored: Stored) -> None:
    step, plan = restore_inputs(
        spec_name=SPEC,
        component=COMPONENT,
        database="postgres",
        bin_dir=stored.primary.bin_dir,
        targets=list(stored.targets),
        step={"name": "restore"},
    )
    stored.corrupt("s3-first", stored.newer)
    key = f"fallback-{uuid.uuid4().hex[:8]}"
    result = restore_component(step=step, plan=plan, params={}, run_key=key)
    root = Path(result["restored"]["data_directory"]).parent
    try:
        assert result["backup_id"] == stored.newer.backup_id and result["target"] == "local-second"
        assert "in s3-first: object base.tar.zst is corrupt" in result["skipped_copies"][0]
        with psycopg.connect(host="127.0.0.1", port=result["restored"]["port"], user="postgres") as conn:
            row = conn.execute("select count(*) from t").fetchone()
        assert row == (stored.rows_at_newer,)
    finally:
        clear_earlier_try(root, LocalHost(), stored.primary.bin_dir)
        shutil.rmtree(root, ignore_errors=True)

    stored.corrupt("local-second", stored.newer)
    refused_key = f"refused-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RestoreRefused, match="no intact copy") as refused:
        restore_component(step=step, plan=plan, params={}, run_key=refused_key)
    assert f"--backup {stored.older.backup_id}" in str(refused.value)
    assert not (root.parent / refused_key).exists()  # a refused restore leaves no directory it created


def test_the_restore_dag_jobs_fall_back_past_a_corrupt_copy_and_an_unreachable_target(
    stored: Stored, pg_workdir: Path
) -> None:
    stored.corrupt("s3-first", stored.newer)
    gone = {**stored.targets[0], "name": "s3-gone", "bucket": f"drflow-gone-{uuid.uuid4().hex[:8]}"}
    catalogs = target_catalogs(SPEC, [gone, *stored.targets])
    planned = plan_from_form(catalogs, COMPONENT, backup_id=None, target_time=None, target_lsn=None)
    assert planned["base_backup"] == stored.newer.backup_id and planned["planned_from"] == "s3-first"
    [unreadable] = planned["unreadable_targets"]
    assert unreadable.startswith("s3-gone: cannot be read") and "does not exist" in unreadable
    dest = pg_workdir / "dag-restore"
    result = execute_planned(
        catalogs, {**planned, "restore_to": str(dest), "start": False}, host=LocalHost(), bin_dir=stored.primary.bin_dir
    )
    assert result["storage_target"] == "local-second"
    assert "in s3-first: object base.tar.zst is corrupt" in result["skipped_copies"][0]
    assert (dest / "PG_VERSION").is_file()


def _restore_table(stored: Stored) -> Any:
    table = ["restore-table", "--spec", str(stored.spec), "--component", COMPONENT, "--table", "t"]
    return CliRunner().invoke(app, [*table, "--dsn", f"host=127.0.0.1 port={stored.primary.port} user=postgres"])


def _drop_t(stored: Stored) -> None:
    with psycopg.connect(**stored.primary.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute("drop table t")


def test_restore_table_uses_the_dump_in_the_second_target_when_the_first_copy_is_corrupt(stored: Stored) -> None:
    dump_object = stored.dump.objects[0].name
    stored.corrupt("s3-first", stored.dump, dump_object)
    _drop_t(stored)
    result = _restore_table(stored)
    assert result.exit_code == 0, result.output
    output = _one_line(result.output)
    assert f"skipped the copy of backup {stored.dump.backup_id} in s3-first: object {dump_object} is corrupt" in output
    assert f"restored table public.t ({stored.rows_at_newer} rows) from backup {stored.dump.backup_id}" in output
    assert "from local-second)" in output
    print(result.output)
    assert _count(stored.primary) == stored.rows_at_newer


def test_restore_table_with_no_intact_dump_names_both_targets_and_changes_nothing(stored: Stored) -> None:
    dump_object = stored.dump.objects[0].name
    stored.corrupt("s3-first", stored.dump, dump_object)
    stored.corrupt("local-second", stored.dump, dump_object)
    _drop_t(stored)
    result = _restore_table(stored)
    assert result.exit_code == 1, result.output
    output = _one_line(result.output)
    assert f"no intact copy of backup {stored.dump.backup_id}; nothing was restored" in output
    assert f"s3-first, local-second: object {dump_object} is corrupt" in output
    assert "There is no older backup to fall back to: add a backup policy with method pg_dump" in output
    assert "Traceback" not in result.output
    print(result.output)
    with psycopg.connect(**stored.primary.conninfo().libpq_kwargs(), autocommit=True) as conn:
        assert conn.execute("select to_regclass('public.t')").fetchone() == (None,)
