"""SQL checks against a real PostgreSQL 15: one read-only statement, bounded time, one comparison."""

from __future__ import annotations

import dataclasses
import time

import psycopg
import pytest

from drflow.engines.postgres.checks import run_sql_checks
from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.queries import (
    ValidationQueryError,
    read_validation_queries,
    run_validation_queries,
)
from drflow.jobs.drill import compare_validation

ESCAPES = [
    "commit; create table escaped(); select 1",
    "select 1; commit; create table escaped(); select 1",
    "/* hi */ (select 1); drop table kept",
    "-- a comment\nset transaction read write",
    "copy (select 1) to program 'touch /tmp/drflow-escaped'",
    "with d as (insert into kept values (2) returning 1) select count(*) from d",
    "select set_config('transaction_read_only', 'off', true)",
    "select 1 into escaped",
]


def _tables(conn: PgConnInfo) -> list[str]:
    with psycopg.connect(**conn.libpq_kwargs(), autocommit=True) as db:
        return [r[0] for r in db.execute("select relname from pg_class where relname in ('escaped', 'kept')")]


def _kept_rows(conn: PgConnInfo) -> int:
    with psycopg.connect(**conn.libpq_kwargs(), autocommit=True) as db:
        row = db.execute("select count(*) from kept").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def primary(pg_primary: LocalCluster) -> PgConnInfo:
    conn = pg_primary.conninfo()
    with psycopg.connect(**conn.libpq_kwargs(), autocommit=True) as db:
        db.execute("create table kept (id int); insert into kept values (1)")
    return conn


@pytest.mark.parametrize("query", ESCAPES)
def test_a_check_never_writes(primary: PgConnInfo, query: str) -> None:
    report = run_sql_checks(primary, [{"name": "sneaky", "query": query, "expected": "1"}])
    assert not report["passed"]
    assert report["checks"][0]["error"]
    with pytest.raises(ValidationQueryError, match="sneaky"):
        run_validation_queries(primary, [{"name": "sneaky", "query": query}])
    assert _tables(primary) == ["kept"]
    assert _kept_rows(primary) == 1


def test_statement_refusals_say_what_to_do(primary: PgConnInfo) -> None:
    report = run_sql_checks(
        primary,
        [
            {"name": "two", "query": "select 1; commit; create table escaped(); select 1", "expected": "1"},
            {"name": "commit", "query": "commit; create table escaped(); select 1", "expected": "1"},
            {"name": "ok", "query": "select count(*) from kept", "expected": "1"},
        ],
    )
    errors = {c["name"]: c.get("error") for c in report["checks"]}
    assert "more than one statement" in errors["two"] and "remove everything after the first ';'" in errors["two"]
    assert "starts with 'commit'" in errors["commit"] and "rewrite it as a single select" in errors["commit"]
    assert report["failed"] == ["two", "commit"]


def test_statement_timeout_from_the_spec(primary: PgConnInfo) -> None:
    started = time.monotonic()
    report = run_sql_checks(
        primary, [{"name": "slow", "query": "select pg_sleep(20)", "expected": ""}], statement_timeout="1s"
    )
    assert time.monotonic() - started < 10
    assert "statement timeout" in report["checks"][0]["error"]
    with pytest.raises(ValidationQueryError, match="statement timeout"):
        run_validation_queries(primary, [{"name": "slow", "query": "select pg_sleep(20)", "statement_timeout": "1s"}])


def test_boolean_expected_true_is_the_same_in_both_paths(primary: PgConnInfo) -> None:
    queries = [{"name": "has_rows", "query": "select count(*) > 0 from kept", "expected": "true"}]
    # validate_sql steps
    report = run_sql_checks(primary, queries)
    assert report["passed"], report
    assert report["checks"][0]["actual"] == "true"
    # drill checks: against the spec's expected, against a value recorded at backup time (also the
    # "True" older versions recorded), and with a boolean false that must not pass.
    recorded = run_validation_queries(primary, queries)
    assert recorded == {"has_rows": "true"}
    measured = read_validation_queries(primary, queries)
    assert compare_validation(queries, {}, measured)[0]["passed"]
    unpinned = [{"name": "has_rows", "query": queries[0]["query"]}]
    for value in ("true", "True", "t"):
        assert compare_validation(unpinned, {"has_rows": value}, measured)[0]["passed"], value
    assert not compare_validation(unpinned, {"has_rows": "false"}, measured)[0]["passed"]
    assert not run_sql_checks(primary, [{**queries[0], "expected": "false"}])["passed"]


def test_connect_timeout_in_the_connection_extras(primary: PgConnInfo) -> None:
    conn = dataclasses.replace(primary, options={"connect_timeout": "3"})
    assert run_validation_queries(conn, [{"name": "one", "query": "select 1"}]) == {"one": "1"}
    assert run_sql_checks(conn, [{"name": "one", "query": "select 1", "expected": "1"}])["passed"]
    assert conn.libpq_kwargs(connect_timeout=10)["connect_timeout"] == "3"
    assert primary.libpq_kwargs(connect_timeout=10)["connect_timeout"] == 10
