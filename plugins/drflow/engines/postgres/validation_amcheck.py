"""amcheck's ``bt_index_check`` over every btree index of a database (the `amcheck` validation check).

Checking is read-only (an AccessShareLock per index, fine on a standby) and runs as checks do, one
statement per index in its own savepoint so that one corrupt index does not hide the others. Creating the
extension is a write: :func:`create_amcheck` is called only on restored scratch instances, never on a
source; elsewhere the extension must already be installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from drflow.engines.postgres.checks import fetch_value
from drflow.engines.postgres.conninfo import PgConnInfo

_INDEXES = """
select coalesce(json_agg(json_build_object('oid', c.oid, 'index', n.nspname || '.' || c.relname,
    'table', tn.nspname || '.' || t.relname) order by n.nspname, c.relname), '[]'::json)
from pg_index i
join pg_class c on c.oid = i.indexrelid
join pg_am am on am.oid = c.relam
join pg_namespace n on n.oid = c.relnamespace
join pg_class t on t.oid = i.indrelid
join pg_namespace tn on tn.oid = t.relnamespace
where am.amname = 'btree' and i.indisvalid and i.indisready and c.relpersistence <> 't'
"""


class AmcheckMissing(RuntimeError):
    """The amcheck extension is not installed where the check runs (and drflow may not create it there)."""


@dataclass(frozen=True)
class IndexVerdict:
    index: str
    table: str
    error: str | None = None
    """What bt_index_check reported; None when the index is intact."""


def create_amcheck(conn: PgConnInfo) -> bool:
    """``CREATE EXTENSION amcheck`` in the database of a restored scratch instance; True when it created it."""
    from drflow.engines.postgres.node import connect

    with connect(conn, timeout=10) as db:
        db.autocommit = True
        row = db.execute("select count(*) from pg_extension where extname = 'amcheck'").fetchone()
        if row is not None and row[0]:
            return False
        db.execute("create extension amcheck")
    return True


def drop_amcheck(conn: PgConnInfo) -> None:
    """Remove the extension :func:`create_amcheck` created (a restored copy may become a production server)."""
    from drflow.engines.postgres.node import connect

    with connect(conn, timeout=10) as db:
        db.autocommit = True
        db.execute("drop extension if exists amcheck")


def check_indexes(db: psycopg.Connection[Any], *, heapallindexed: bool, timeout_s: float) -> list[IndexVerdict]:
    """``bt_index_check`` of every valid btree index, inside the read-only transaction ``db`` has open."""
    schema = fetch_value(
        db,
        "select (select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace "
        "where e.extname = 'amcheck')",
        timeout_s=timeout_s,
    )
    if schema is None:
        raise AmcheckMissing("the amcheck extension is not installed in this database")
    verdicts = []
    for index in fetch_value(db, _INDEXES, timeout_s=timeout_s):
        query = sql.SQL("select {}.bt_index_check({}::oid::regclass, {})").format(
            sql.Identifier(schema), sql.Literal(int(index["oid"])), sql.Literal(heapallindexed)
        )
        try:
            with db.transaction():
                fetch_value(db, query.as_string(db), timeout_s=timeout_s)
        except psycopg.Error as exc:
            verdicts.append(IndexVerdict(index["index"], index["table"], str(exc).strip().splitlines()[0]))
        else:
            verdicts.append(IndexVerdict(index["index"], index["table"]))
    return verdicts
