"""Data checks of validation suites, measured on PostgreSQL: table checksums, row counts, constraint violations,
orphans, and the WAL position of the snapshot they were read in.

Every query is a check (:func:`drflow.engines.postgres.checks.fetch_value`): one read-only statement with a
statement timeout, in a read-only transaction the caller opens, so the same code reads a source at backup
time and a restored copy later. Measurements only; the suite compares them.

A table's checksum is the sum, over its rows, of the first 64 bits of each row's md5 (its text form), with
the row count beside it: order-free, so the server reads the table once without sorting it and keeps no
more than a running sum, on a production source as on the copy. Row text depends on output settings, so
they are pinned for the transaction (:data:`PINNED_SETTINGS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from drflow.engines.postgres.checks import CheckRefused, fetch_value
from drflow.spec.statement import refusal

PINNED_SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
}
"""Output settings a row's text depends on, the same at backup time and on the copy."""
SAMPLE_ROWS = 3


def pin_settings(db: psycopg.Connection[Any]) -> None:
    """Pin :data:`PINNED_SETTINGS` for the transaction ``db`` has open (set_config, allowed read-only)."""
    calls = sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), sql.Literal(value))
        for name, value in PINNED_SETTINGS.items()
    )
    db.execute(sql.SQL("select {}").format(calls))


def _table(schema: str, table: str) -> sql.Composable:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def _run(db: psycopg.Connection[Any], query: sql.Composable, timeout_s: float) -> Any:
    return fetch_value(db, query.as_string(db), timeout_s=timeout_s)


def table_checksum(db: psycopg.Connection[Any], schema: str, table: str, *, timeout_s: float) -> tuple[int, str]:
    """The table's row count and checksum (see the module's docs)."""
    query = sql.SQL(
        "select json_build_object('rows', count(*), 'checksum', "
        "coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint), 0)::text) from {} as t"
    ).format(_table(schema, table))
    value = _run(db, query, timeout_s)
    return int(value["rows"]), str(value["checksum"])


def row_count(db: psycopg.Connection[Any], schema: str, table: str, *, timeout_s: float) -> int:
    return int(_run(db, sql.SQL("select count(*) from {}").format(_table(schema, table)), timeout_s))


def snapshot_lsn(db: psycopg.Connection[Any], *, timeout_s: float) -> str:
    """The WAL position of the transaction's snapshot: where a primary writes, or a standby has replayed to."""
    query = "select case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end"
    return str(fetch_value(db, query, timeout_s=timeout_s))


@dataclass(frozen=True)
class Orphans:
    count: int
    sample: list[str]


def orphans(db: psycopg.Connection[Any], query: str, *, timeout_s: float) -> Orphans:
    """How many rows the spec's ``query`` lists, and the first few (as text)."""
    why = refusal(query)
    if why:
        raise CheckRefused(why)
    inner = sql.SQL(query.strip().rstrip(";").rstrip())  # reviewed SQL from the spec, checked above
    wrapped = sql.SQL(
        "select json_build_object('count', (select count(*) from ({q}) as o), "
        "'sample', (select coalesce(json_agg(s.o::text), '[]'::json) from (select o from ({q}) as o limit {n}) as s))"
    ).format(q=inner, n=sql.Literal(SAMPLE_ROWS))
    value = _run(db, wrapped, timeout_s)
    return Orphans(int(value["count"]), [str(row) for row in value["sample"]])


@dataclass(frozen=True)
class Violations:
    """Rows that break one constraint."""

    constraint: str
    table: str
    kind: str
    """foreign key or check."""
    validated: bool
    """False for a NOT VALID constraint, which PostgreSQL never checked for the rows already there."""
    rows: int


_CONSTRAINTS = """
select coalesce(json_agg(json_build_object(
    'name', c.conname, 'kind', c.contype, 'validated', c.convalidated, 'match', c.confmatchtype,
    'schema', n.nspname, 'table', t.relname,
    'columns', (select json_agg(a.attname order by k.ord) from unnest(c.conkey) with ordinality as k(attnum, ord)
                join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum),
    'parent_schema', pn.nspname, 'parent_table', p.relname,
    'parent_columns', (select json_agg(a.attname order by k.ord)
                       from unnest(c.confkey) with ordinality as k(attnum, ord)
                       join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.attnum),
    'expression', case when c.contype = 'c' then pg_get_expr(c.conbin, c.conrelid) end
) order by n.nspname, t.relname, c.conname), '[]'::json)
from pg_constraint c
join pg_class t on t.oid = c.conrelid
join pg_namespace n on n.oid = t.relnamespace
left join pg_class p on p.oid = c.confrelid
left join pg_namespace pn on pn.oid = p.relnamespace
where c.contype in ('f', 'c') and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
"""


def constraint_violations(
    db: psycopg.Connection[Any], tables: Sequence[tuple[str, str]], *, timeout_s: float
) -> list[Violations]:
    """Every foreign key and CHECK constraint of ``tables`` (all tables when empty), with the rows breaking it.

    Each constraint is one counting query in its own savepoint, so one that times out is reported (raised
    as ``psycopg.Error`` naming it) without losing the others' counts."""
    wanted = set(tables)
    found = []
    for con in fetch_value(db, _CONSTRAINTS, timeout_s=timeout_s):
        if wanted and (con["schema"], con["table"]) not in wanted:
            continue
        query = _foreign_key_query(con) if con["kind"] == "f" else _check_query(con)
        try:
            with db.transaction():
                rows = int(_run(db, query, timeout_s))
        except psycopg.Error as exc:
            raise psycopg.Error(f"constraint {con['name']} on {con['schema']}.{con['table']}: {exc}") from exc
        found.append(
            Violations(
                constraint=str(con["name"]),
                table=f"{con['schema']}.{con['table']}",
                kind="foreign key" if con["kind"] == "f" else "check",
                validated=bool(con["validated"]),
                rows=rows,
            )
        )
    return found


def _foreign_key_query(con: dict[str, Any]) -> sql.Composable:
    child = [sql.SQL("c.{}").format(sql.Identifier(col)) for col in con["columns"]]
    parent = [sql.SQL("p.{}").format(sql.Identifier(col)) for col in con["parent_columns"]]
    all_set = sql.SQL(" and ").join(sql.SQL("{} is not null").format(col) for col in child)
    same = sql.SQL(" and ").join(sql.SQL("{} = {}").format(p, c) for p, c in zip(parent, child, strict=True))
    missing = sql.SQL("({all_set} and not exists (select 1 from {parent} as p where {same}))").format(
        all_set=all_set, parent=_table(con["parent_schema"], con["parent_table"]), same=same
    )
    if con["match"] == "f" and len(child) > 1:  # MATCH FULL: all null, or none
        some_null = sql.SQL(" or ").join(sql.SQL("{} is null").format(col) for col in child)
        missing = sql.SQL("({} or (({}) and not ({})))").format(missing, some_null, all_set)
    return sql.SQL("select count(*) from {} as c where {}").format(_table(con["schema"], con["table"]), missing)


def _check_query(con: dict[str, Any]) -> sql.Composable:
    # A CHECK passes when its expression is true or null. The expression is the database's own catalog text.
    return sql.SQL("select count(*) from {} where not coalesce(({}), true)").format(
        _table(con["schema"], con["table"]), sql.SQL(con["expression"])
    )
