"""SQL checks that can never write: the one way drflow runs a query taken from a spec.

Used for drill validation queries, the values recorded at backup time, and `validate_sql` plan
steps. A check is exactly one query statement:

- its first word must be ``select``, ``with``, ``values``, ``table`` or ``show`` (comments and
  parentheses before it are skipped), so ``commit``, ``set``, ``copy``, ``do``, ``call`` … are
  refused before anything is sent;
- it runs through the extended protocol as a prepared statement, so the server itself refuses a
  second statement hidden after a ``;`` (``select 1; commit; create table …``);
- inside a read-only transaction (checked, not assumed) with a transaction-local
  ``statement_timeout``, taken after the transaction's first snapshot so that
  ``set transaction read write`` can no longer switch it;
- it must leave that transaction open and return one row of one column.

Values compare in one way everywhere (:func:`matches`): a boolean equals ``true``/``false`` (also
``t``/``f``, ``on``/``off``, ``yes``/``no``, ``1``/``0``, any case), NULL equals ``NULL``, anything
else compares as its text.

The role a check connects as should still be a least-privileged one: a read-only transaction does
not stop functions with effects outside the database (``pg_terminate_backend``, ``dblink`` …).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import pq

from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.spec.statement import refusal

DEFAULT_STATEMENT_TIMEOUT_S = 60.0
"""A check's statement_timeout when its spec entry sets none."""
_TRUE = frozenset({"t", "true", "on", "yes", "1"})
_FALSE = frozenset({"f", "false", "off", "no", "0"})


class CheckRefused(ValueError):
    """The check is not a single read-only query; it was not run (or its effect rolled back)."""


def timeout_seconds(value: object) -> float:
    """A check's statement timeout in seconds, from a spec entry's ``statement_timeout`` (or None)."""
    if value is None or value == "":
        return DEFAULT_STATEMENT_TIMEOUT_S
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        return float(value)
    from drflow.spec.types import parse_duration

    return parse_duration(value).total_seconds()


def fetch_value(db: psycopg.Connection[Any], query: str, *, timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S) -> Any:
    """Run one check inside the read-only transaction ``db`` has open; return its single value.

    Raises :class:`CheckRefused` for anything that is not a single query returning one row of one
    column, and ``psycopg.Error`` when the query fails (a syntax error, the timeout …).
    """
    why = refusal(query)
    if why:
        raise CheckRefused(why)
    # A SELECT first: it takes the transaction's snapshot, after which read-only cannot be undone.
    guard = db.execute(
        "select current_setting('transaction_read_only'), set_config('statement_timeout', %s, true)",
        (f"{int(timeout_s * 1000)}ms",),
    ).fetchone()
    if guard is None or guard[0] != "on":
        raise RuntimeError("drflow bug: a check was about to run outside a read-only transaction")
    try:
        # prepare=True: the extended protocol, which carries exactly one statement.
        rows = db.execute(query, prepare=True).fetchall()  # reviewed SQL from the spec, checked above
    except psycopg.errors.SyntaxError as exc:
        if "cannot insert multiple commands into a prepared statement" in str(exc):
            raise CheckRefused(
                "the check holds more than one statement; a check must be exactly one query: "
                "remove everything after the first ';'"
            ) from exc
        raise
    if db.info.transaction_status != pq.TransactionStatus.INTRANS:
        raise CheckRefused("the check ended its transaction; a check must be a single select")
    if len(rows) != 1 or len(rows[0]) != 1:
        shape = f"{len(rows)} rows" + (f" of {len(rows[0])} columns" if rows else "")
        raise CheckRefused(f"a check must return one row of one column, this one returned {shape}: fix the query")
    return rows[0][0]


def read_only_connection(conn: PgConnInfo) -> psycopg.Connection[Any]:
    """A connection whose every transaction is read-only (the caller opens them)."""
    from drflow.engines.postgres.node import connect

    db = connect(conn, timeout=10)
    db.autocommit = False
    db.read_only = True
    return db


def as_text(value: object) -> str:
    """How a result value is shown and recorded: NULL, true/false, else ``str()``."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def matches(value: object, expected: object) -> bool:
    """The one comparison of a check's value with its expected value (spec or recorded text)."""
    wanted = as_text(expected).strip() if isinstance(expected, bool) else str(expected).strip()
    if isinstance(value, bool):
        return wanted.lower() in (_TRUE if value else _FALSE)
    return as_text(value) == wanted


def run_sql_checks(
    conn: PgConnInfo, checks: Sequence[Mapping[str, Any]], *, statement_timeout: object = None
) -> dict[str, Any]:
    """Run every check, each in its own read-only transaction, and report all of them.

    A check passes when it returns one value that :func:`matches` ``expected``. A refused or
    failing query fails only that check. Connecting is not a check: an unreachable server raises
    ``psycopg.OperationalError``.
    """
    timeout_s = timeout_seconds(statement_timeout)
    results = []
    with read_only_connection(conn) as db:
        for check in checks:
            name, query, expected = str(check["name"]), str(check["query"]), check.get("expected", "")
            entry: dict[str, Any] = {"name": name, "query": query, "expected": as_text(expected)}
            try:
                with db.transaction():
                    value = fetch_value(db, query, timeout_s=timeout_s)
            except (psycopg.Error, CheckRefused) as exc:
                prefix = "refused: " if isinstance(exc, CheckRefused) else ""
                entry.update(actual=None, passed=False, error=prefix + str(exc).strip())
            else:
                entry.update(actual=as_text(value), passed=matches(value, expected))
            results.append(entry)
    failed = [r for r in results if not r["passed"]]
    return {"server": conn.describe(), "passed": not failed, "checks": results, "failed": [r["name"] for r in failed]}


def mismatch_lines(report: Mapping[str, Any]) -> list[str]:
    """One line per failed check: what was expected and what came back (or the error)."""
    lines = []
    for check in report["checks"]:
        if check["passed"]:
            continue
        got = f"error: {check['error']}" if check.get("error") else f"got {check['actual']!r}"
        lines.append(f"{check['name']}: expected {check['expected']!r}, {got}")
    return lines
