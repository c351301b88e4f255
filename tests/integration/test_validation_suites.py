"""Validation suites against real PostgreSQL: values recorded on the source, then checks that pass on the same
data and fail, saying by how much, once it differs; checks that never write to a source; pgbench and amcheck.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.hosts import LocalHost
from drflow.jobs.validation import SuiteTarget, record_at_backup, run_suite
from drflow.jobs.validation_results import SuiteResult
from drflow.operators.validation import ValidateSuiteOperator
from drflow.spec.validation import parse_checks
from tests.fixtures.pg import PG_BIN_DIR, airflow_conn_json, create_database, pg_workdir_context, running_cluster
from tests.plan_inputs import step_params

pytestmark = pytest.mark.slow

SCHEMA = (
    "create table accounts (id bigint primary key, email text not null)",
    "insert into accounts select n, 'user' || n || '@example.com' from generate_series(1, 5000) n",
    "create table invoices (id bigint primary key, account_id bigint not null references accounts, "
    "amount_cents bigint not null check (amount_cents >= 0))",
    "insert into invoices select n, 1 + n % 5000, n from generate_series(1, 3000) n",
    "create table payments (id bigint primary key, invoice_id bigint not null)",
    "insert into payments select n, n from generate_series(1, 1000) n",
    "create function zap_payments() returns bigint language sql as 'delete from payments returning id'",
)
ORPHANS = "select p.id from payments p left join invoices i on i.id = p.invoice_id where i.id is null;"
SUITE: list[dict[str, Any]] = [
    {"name": "accounts-count", "query": "select count(*) from accounts"},
    {"name": "intact", "type": "checksum", "tables": ["accounts", "public.invoices"]},
    {"name": "complete", "type": "row-count", "tables": ["accounts"], "tolerance": "1%"},
    {"name": "consistent", "type": "constraints"},
    {"name": "paid-invoices", "type": "orphans", "query": ORPHANS},
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    host = LocalHost()
    with pg_workdir_context(host) as workdir, running_cluster(workdir, "validation", host) as running:
        create_database(running, "shop", *SCHEMA)
        yield running


def sql(conn: PgConnInfo, *statements: str) -> None:
    with psycopg.connect(**conn.libpq_kwargs(), autocommit=True) as db:
        for statement in statements:
            db.execute(statement)


def value(conn: PgConnInfo, query: str) -> Any:
    with psycopg.connect(**conn.libpq_kwargs(), autocommit=True) as db:
        row = db.execute(query).fetchone()
    assert row is not None
    return row[0]


def problems(result: SuiteResult) -> dict[str, str]:
    return {r.name: r.problem() for r in result.results if not r.passed}


def test_recorded_values_pass_on_the_same_data_and_each_difference_says_by_how_much(cluster: LocalCluster) -> None:
    conn = cluster.conninfo("shop")
    values, baseline = record_at_backup(conn, SUITE, bin_dir=None)
    assert values == {"accounts-count": "5000"}
    assert baseline is not None and baseline.lsn and baseline.row_counts["public.accounts"] == 5000
    assert set(baseline.checksums) == {"public.accounts", "public.invoices"}
    checks = parse_checks(SUITE)
    target = SuiteTarget(conn=conn, recorded=values, baseline=baseline)

    same = run_suite(checks, target)
    assert same.passed, same.problems()
    assert same.summary() == "5/5 passed (data 5/5)"

    sql(
        conn,
        "insert into accounts select n, 'late' || n from generate_series(5001, 5060) n",  # +60: 1.2% > 1%
        "update invoices set amount_cents = amount_cents + 1 where id = 7",  # same count, other content
        "insert into payments values (1001, 999999), (1002, 888888)",  # two payments of no invoice
        # A NOT VALID foreign key and CHECK over rows PostgreSQL never checked: what `constraints` is for.
        "alter table payments add constraint payments_invoice_fk foreign key (invoice_id) references invoices "
        "not valid",
        "alter table accounts add constraint accounts_email_at check (email like '%@%') not valid",
    )
    try:
        differs = problems(run_suite(checks, target))
    finally:
        sql(
            conn,
            "alter table payments drop constraint payments_invoice_fk",
            "alter table accounts drop constraint accounts_email_at",
            "delete from accounts where id > 5000",
            "delete from payments where id > 1000",
            "update invoices set amount_cents = amount_cents - 1 where id = 7",
        )
    assert differs["accounts-count"] == "accounts-count (sql): value: expected 5000, got 5060 (differs)"
    assert "public.accounts: expected" in differs["intact"] and "(+60 rows)" in differs["intact"]
    assert (
        "public.invoices: expected" in differs["intact"] and "(+0 rows, same count, other content)" in differs["intact"]
    )
    assert differs["complete"] == (
        "complete (row-count): public.accounts: expected 5000 ± 1% (4950..5050), got 5060 (+60 rows, +1.2%, "
        "10 beyond the tolerance)"
    )
    assert differs["consistent"] == (
        "consistent (constraints): check accounts_email_at on public.accounts (NOT VALID): expected at most 0 "
        "violating rows, got 60 (60 too many); foreign key payments_invoice_fk on public.payments (NOT VALID): "
        "expected at most 0 violating rows, got 2 (2 too many)"
    )
    assert differs["paid-invoices"] == "paid-invoices (orphans): orphans: expected at most 0 rows, got 2 (2 too many)"


def test_a_suite_never_writes_to_a_source(cluster: LocalCluster) -> None:
    conn = cluster.conninfo("shop")
    checks = parse_checks(
        [
            {"name": "indexes", "type": "amcheck"},
            {"name": "bench", "type": "pgbench", "duration": "1s", "min_tps": 1},
            {"name": "sneaky", "type": "orphans", "query": "delete from payments returning id"},
            {"name": "hidden", "type": "orphans", "query": "select zap_payments()"},
            {
                "name": "writer",
                "type": "pgbench",
                "duration": "1s",
                "script": "select 1;\nupdate payments set id = id;",
            },
        ]
    )
    result = problems(run_suite(checks, SuiteTarget(conn=conn, bin_dir=PG_BIN_DIR)))
    assert "the amcheck extension is not installed" in result["indexes"]
    assert "drflow creates it only on restored copies" in result["indexes"]
    assert "refused: the built-in select-only run needs pgbench's tables" in result["bench"]
    assert result["sneaky"].startswith("sneaky (orphans): refused: the check starts with 'delete'")
    assert result["hidden"] == "hidden (orphans): cannot execute DELETE in a read-only transaction"
    assert "refused: the check starts with 'update'" in result["writer"]
    assert value(conn, "select count(*) from pg_extension where extname = 'amcheck'") == 0
    assert value(conn, "select count(*) from pg_database where datname = 'drflow_pgbench'") == 0
    assert value(conn, "select count(*) from payments") == 1000


def test_the_plan_step_fails_naming_each_check_and_by_how_much(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    create_database(
        cluster,
        "orders",
        "create table orders (id int primary key, total int not null)",
        "create table lines (id int primary key, order_id int not null)",
        "insert into orders select n, n from generate_series(1, 10) n",
        "insert into lines select n, n from generate_series(1, 12) n",  # lines 11 and 12 have no order
    )
    monkeypatch.setenv("AIRFLOW_CONN_PG_PRIMARY", airflow_conn_json(cluster))
    orphans = "select l.id from lines l left join orders o on o.id = l.order_id where o.id is null"
    step = {
        "name": "check",
        "action": "validate",
        "component": "orders",
        "node": "primary",
        "suite": [
            {"name": "consistent", "type": "constraints"},
            {"name": "whole-orders", "type": "orphans", "query": orphans, "max": 1},
            {"name": "totals", "query": "select sum(total) from orders", "expected": 55},
        ],
    }
    operator = ValidateSuiteOperator(task_id="check", **step_params(step))
    with pytest.raises(AirflowFailException) as failed:
        operator.execute({"params": {"reason": "test"}})
    assert str(failed.value) == (
        f"validation suite check on postgres@127.0.0.1:{cluster.port}/orders: 2/3 passed (data 2/3); "
        "whole-orders (orphans): orphans: expected at most 1 row, got 2 (1 too many). Find out why before sending "
        "traffic to it, or fix the check in the spec"
    )


def test_pgbench_against_the_baseline_recorded_on_the_source(cluster: LocalCluster) -> None:
    conn = cluster.conninfo("shop")
    script = "\\set id random(1, 5000)\nselect email from accounts where id = :id;"
    bench = {"name": "lookups", "type": "pgbench", "duration": "1s", "script": script, "min_ratio": 0.05}
    _, baseline = record_at_backup(conn, [bench], bin_dir=PG_BIN_DIR)
    assert baseline is not None and len(baseline.pgbench) == 1
    [recorded] = baseline.pgbench.values()
    assert recorded.tps > 0 and recorded.transactions > 0

    demanding = {**bench, "name": "demanding", "min_ratio": 10}
    result = run_suite(parse_checks([bench, demanding]), SuiteTarget(conn=conn, bin_dir=PG_BIN_DIR, baseline=baseline))
    by_name = {r.name: r for r in result.results}
    assert by_name["lookups"].passed, by_name["lookups"].problem()
    [measure] = by_name["demanding"].measures
    assert not measure.passed and measure.tolerance == "10×"
    assert (
        measure.expected
        == f"at least 10 × {recorded.tps:.1f} tps (source at backup time) = {recorded.tps * 10:.1f} tps"
    )
    assert "tps short of 10× the source's" in str(measure.by)


def test_scratch_copies_get_pgbench_tables_and_amcheck_which_finds_a_corrupt_index(cluster: LocalCluster) -> None:
    """On a restored copy (scratch) drflow may create what checks need; it removes it again afterwards."""
    conn = cluster.conninfo("shop")
    checks = parse_checks(
        [
            {"name": "indexes", "type": "amcheck", "heapallindexed": True},
            {"name": "bench", "type": "pgbench", "duration": "1s", "min_tps": 1, "clients": 2},
        ]
    )
    scratch = SuiteTarget(conn=conn, scratch=True, bin_dir=PG_BIN_DIR)
    passed = run_suite(checks, scratch)
    assert passed.passed, passed.problems()
    assert passed.results[0].detail["indexes"] >= 4  # the three primary keys and the catalog's
    assert passed.results[1].detail["tps"] > 1
    assert value(conn, "select count(*) from pg_extension where extname = 'amcheck'") == 0
    assert value(conn, "select count(*) from pg_database where datname = 'drflow_pgbench'") == 0

    path = value(conn, "select pg_relation_filepath('payments_pkey')")
    sql(conn, "checkpoint")
    cluster.stop("fast")
    index_file = cluster.data_dir / path
    data = bytearray(index_file.read_bytes())
    struct.pack_into("<i", data, 8192 + 8000, 123456789)  # a key in the first leaf page
    index_file.write_bytes(bytes(data))
    cluster.start(timeout=60)
    [corrupt] = run_suite(checks[:1], scratch).results
    assert not corrupt.passed
    assert "btree indexes: expected all" in corrupt.problem() and "(1 corrupt)" in corrupt.problem()
    assert "public.payments_pkey: expected intact, got invalid page in block 1" in corrupt.problem()
    sql(conn, "reindex index payments_pkey")
