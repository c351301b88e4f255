"""pg_dump backups and restoring one table dropped by mistake, against a real primary."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.pgdump import LogicalBackupError
from drflow.jobs.logical import LogicalBackupRequest, restore_table, take_logical_backup
from drflow.store.factory import target_catalogs
from drflow.store.manifest import BackupManifest
from tests.fixtures.pg import airflow_conn_json, create_database

pytestmark = pytest.mark.slow

SCHEMA = """
create table customers (id serial primary key, name text not null unique);
create table orders (
    id bigint generated always as identity primary key,
    customer int not null references customers(id),
    qty int not null check (qty > 0),
    note text default 'none'
);
create index orders_customer_idx on orders (customer);
comment on column orders.qty is 'how many';
create function touch() returns trigger language plpgsql as $$ begin new.note := 'touched'; return new; end $$;
create trigger orders_touch before update on orders for each row execute function touch();
create table audit (id int primary key, what text);
insert into customers (name) select 'c' || n from generate_series(1, 20) n;
insert into orders (customer, qty) select n % 20 + 1, n from generate_series(1, 500) n;
insert into audit select n, 'a' || n from generate_series(1, 50) n;
"""
ORDERS_DIGEST = (
    "select md5(string_agg(id || ':' || customer || ':' || qty || ':' || note, ',' order by id)) from orders"
)
OTHERS_DIGEST = (
    "select md5((select string_agg(id || name, ',' order by id) from customers)"
    " || (select string_agg(id || what, ',' order by id) from audit))"
)


@pytest.fixture
def shop(pg_primary: LocalCluster) -> Iterator[LocalCluster]:
    create_database(pg_primary, "shop", SCHEMA)
    yield pg_primary


def _one(cluster: LocalCluster, query: str) -> Any:
    with psycopg.connect(**cluster.conninfo("shop").libpq_kwargs(), autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return row[0] if row else None


def _exec(cluster: LocalCluster, statement: str) -> None:
    with psycopg.connect(**cluster.conninfo("shop").libpq_kwargs(), autocommit=True) as conn:
        conn.execute(statement)


def _dump(shop: LocalCluster, targets: list[dict[str, Any]], backup_id: str = "d1") -> BackupManifest:
    return take_logical_backup(
        LogicalBackupRequest(
            spec_name="shop-spec",
            component="orders",
            policy="nightly-dump",
            backup_id=backup_id,
            conn=shop.conninfo("shop"),
            bin_dir=shop.bin_dir,
            targets=targets,
            compression="zstd",
            retention_days=7,
            retention_policy="standard",
            validation=[{"name": "orders-digest", "query": ORDERS_DIGEST}],
        )
    )


def test_dump_then_restore_one_dropped_table_leaving_the_rest_alone(
    shop: LocalCluster, local_target: dict[str, Any]
) -> None:
    manifest = _dump(shop, [local_target])
    [(_, catalog)] = target_catalogs("shop-spec", [local_target])
    assert [m.backup_id for m in catalog.list_backups("orders")] == ["d1"]
    assert (manifest.backup_type, manifest.method, manifest.compression) == ("full", "pg_dump", "gzip")
    assert [o.name for o in manifest.objects] == ["shop.pgdump"] and catalog.verify(manifest) == []
    assert manifest.start_lsn and manifest.validation_values["orders-digest"] == _one(shop, ORDERS_DIGEST)
    # A retry of the finished task changes nothing.
    assert _dump(shop, [local_target]).model_dump() == manifest.model_dump()

    # Later work on the other tables, then the mistake.
    with psycopg.connect(**shop.conninfo("shop").libpq_kwargs(), autocommit=True) as conn:
        conn.execute("update customers set name = name || '-renamed' where id <= 5")
        conn.execute("delete from audit where id > 40")
        conn.execute("drop table orders")
    others = _one(shop, OTHERS_DIGEST)

    result = restore_table(catalog, manifest, "orders", shop.conninfo("shop"), bin_dir=shop.bin_dir)

    assert result.rows == 500 and not result.replaced
    assert _one(shop, ORDERS_DIGEST) == manifest.validation_values["orders-digest"]
    assert _one(shop, OTHERS_DIGEST) == others  # customers and audit keep their later changes
    assert _one(shop, "select count(*) from customers where name like '%-renamed'") == 5
    # Its indexes, constraints, trigger, comment and identity came back with it.
    assert _one(shop, "select count(*) from pg_indexes where tablename = 'orders'") == 2
    assert _one(shop, "select count(*) from pg_constraint where conrelid = 'orders'::regclass") == 3
    assert _one(shop, "select col_description('orders'::regclass, 3)") == "how many"
    with psycopg.connect(**shop.conninfo("shop").libpq_kwargs(), autocommit=True) as conn:
        conn.execute("insert into orders (customer, qty) values (1, 1)")
        conn.execute("update orders set qty = 2 where id = 1")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("insert into orders (customer, qty) values (999, 1)")
    assert _one(shop, "select max(id) from orders") == 501
    assert _one(shop, "select note from orders where id = 1") == "touched"


def test_an_existing_table_is_replaced_only_when_asked(shop: LocalCluster, local_target: dict[str, Any]) -> None:
    manifest = _dump(shop, [local_target])
    [(_, catalog)] = target_catalogs("shop-spec", [local_target])
    _exec(shop, "delete from orders where id > 10")
    with pytest.raises(LogicalBackupError, match="exists; nothing was changed.*--replace"):
        restore_table(catalog, manifest, "orders", shop.conninfo("shop"), bin_dir=shop.bin_dir)
    assert _one(shop, "select count(*) from orders") == 10

    result = restore_table(catalog, manifest, "orders", shop.conninfo("shop"), bin_dir=shop.bin_dir, replace=True)
    assert result.replaced and result.rows == 500
    assert _one(shop, ORDERS_DIGEST) == manifest.validation_values["orders-digest"]

    # A table other tables' foreign keys point at is not dropped behind their back.
    with pytest.raises(LogicalBackupError, match="foreign key orders_customer_fkey of table orders"):
        restore_table(catalog, manifest, "customers", shop.conninfo("shop"), bin_dir=shop.bin_dir, replace=True)
    with pytest.raises(LogicalBackupError, match="no table public.nothing; it has: public.audit"):
        restore_table(catalog, manifest, "nothing", shop.conninfo("shop"), bin_dir=shop.bin_dir)


def test_restore_table_command(shop: LocalCluster, tmp_path: Path, local_target: dict[str, Any]) -> None:
    from drflow.cli import app

    spec = tmp_path / "shop.yaml"
    spec.write_text(
        "version: 1\nmetadata: {name: shop-spec, owner: team}\nregions: [{name: r1, role: primary}]\n"
        f"storage: [{{name: local, type: local, path: {local_target['path']}}}]\n"
        "components:\n  - name: orders\n    criticality: low\n    rto: 1h\n    rpo: 1d\n"
        "    datastore: {type: postgres, database: shop, primary: {conn_id: test_shop, region: r1}}\n"
        "    backups: [{name: nightly-dump, type: full, method: pg_dump, schedule: '@daily',"
        " targets: [local], retention: {days: 7}}]\n"
    )
    _dump(shop, [{**local_target, "name": "local"}])
    _exec(shop, "drop table audit")
    os.environ["AIRFLOW_CONN_TEST_SHOP"] = airflow_conn_json(shop)
    try:
        runner = CliRunner()
        args = ["restore-table", "--spec", str(spec), "--component", "orders", "--table", "audit"]
        done = runner.invoke(app, [*args, "--conn-id", "test_shop"])
        assert done.exit_code == 0, done.output
        assert "restored table public.audit (50 rows) from backup d1" in done.output
        again = runner.invoke(app, [*args, "--dsn", f"host=127.0.0.1 port={shop.port} user=postgres"])
        assert again.exit_code == 1 and "exists; nothing was changed" in again.output
    finally:
        del os.environ["AIRFLOW_CONN_TEST_SHOP"]
