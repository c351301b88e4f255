"""`drflow backups list` and `drflow restore` from a spec broken elsewhere, against a real backup."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from drflow.cli import app
from drflow.engines.postgres.cluster import LocalCluster
from drflow.jobs.backup import take_full_backup
from tests.fixtures.backups import full_backup_request
from tests.fixtures.pg import create_database
from tests.integration.test_logical import SCHEMA, _dump, _exec
from tests.unit.test_spec_incident import SPEC

pytestmark = pytest.mark.slow


@pytest.fixture
def shop(pg_primary: LocalCluster) -> LocalCluster:
    """The `shop` database of tests/integration/test_logical.py."""
    create_database(pg_primary, "shop", SCHEMA)
    return pg_primary


def test_backups_list_and_restore_work_from_a_spec_broken_elsewhere(
    pg_primary: LocalCluster, pg_workdir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    manifest = take_full_backup(
        full_backup_request(
            pg_primary,
            [{"name": "local", "type": "local", "path": str(store)}],
            "20261127T000000Z-full-aaaaaa",
            spec_name="shop",
            component="orders",
            policy="full",
        )
    )
    spec = tmp_path / "shop.yaml"
    spec.write_text(SPEC.replace("database: orders,", f"database: postgres, bin_dir: {pg_primary.bin_dir},"))
    runner = CliRunner()

    listed = runner.invoke(app, ["backups", "list", "--spec", str(spec), "--json"])
    assert listed.exit_code == 0, listed.output
    assert manifest.backup_id in listed.stdout
    assert "warning:" in listed.stderr and "recovery_plans[failover]" in listed.stderr

    restored = pg_workdir / "restored"
    result = runner.invoke(app, ["restore", "--spec", str(spec), "--component", "orders", "--to", str(restored)])
    assert result.exit_code == 0, result.output
    assert "components[billing]" in result.stderr and "using only component 'orders'" in result.stderr
    assert (restored / "PG_VERSION").is_file()

    refused = runner.invoke(
        app, ["restore", "--spec", str(spec), "--component", "billing", "--to", str(tmp_path / "x")]
    )
    assert refused.exit_code == 1 and "does not validate" in refused.stderr
    assert not (tmp_path / "x").exists()


def test_restore_table_works_from_a_spec_broken_elsewhere(shop: LocalCluster, tmp_path: Path) -> None:
    store = {"name": "local", "type": "local", "path": str(tmp_path / "store")}
    _dump(shop, [store])
    _exec(shop, "drop table audit")
    spec = tmp_path / "shop.yaml"
    spec.write_text(
        "version: 1\nmetadata: {name: shop-spec, owner: team}\nregions: [{name: r1, role: primary}]\n"
        f"storage: [{{name: local, type: local, path: {store['path']}}}]\n"
        "components:\n  - name: orders\n    criticality: low\n    rto: 1h\n    rpo: 1d\n"
        "    datastore: {type: postgres, database: shop, primary: {conn_id: test_shop, region: r1}}\n"
        "    backups: [{name: nightly-dump, type: full, method: pg_dump, schedule: '@daily',"
        " targets: [local, gone], retention: {days: 7}}]\n"
        "recovery_plans: [{name: oops, scenario: human-error, status: approved}]\n"
    )
    args = ["restore-table", "--spec", str(spec), "--component", "orders", "--table", "audit"]
    done = CliRunner().invoke(app, [*args, "--dsn", f"host=127.0.0.1 port={shop.port} user=postgres"])
    assert done.exit_code == 0, done.output
    assert "restored table public.audit (50 rows)" in done.stdout
    assert "components[orders].backups (line 11)" in done.stderr and "recovery_plans[oops] (line 12)" in done.stderr
