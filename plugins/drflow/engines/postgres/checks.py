"""SQL checks of a recovery plan's `validate_sql` step: each query returns one value, compared as text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drflow.engines.postgres.conninfo import PgConnInfo

STATEMENT_TIMEOUT_MS = 60_000


def as_text(value: object) -> str:
    """How a result value is compared with `expected`: NULL, true/false, else ``str()``."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def run_sql_checks(conn: PgConnInfo, checks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Run every check, each in its own read-only transaction, and report all of them.

    A check passes when its query returns exactly one row of one column whose text (:func:`as_text`)
    equals ``expected`` (booleans also match t/f, on/off, yes/no, 1/0). A query error fails only
    that check. Connecting is not a check: an unreachable server raises ``psycopg.OperationalError``.
    """
    import psycopg

    from drflow.engines.postgres.failover import connect

    results = []
    with connect(conn, timeout=10) as db:
        db.autocommit = False
        db.read_only = True
        db.execute("select set_config('statement_timeout', %s, false)", (str(STATEMENT_TIMEOUT_MS),))
        db.commit()
        for check in checks:
            name, query, expected = str(check["name"]), str(check["query"]), str(check.get("expected", ""))
            entry: dict[str, Any] = {"name": name, "query": query, "expected": expected}
            try:
                with db.transaction():
                    rows = db.execute(query).fetchall()  # reviewed SQL from the spec
            except psycopg.Error as exc:
                entry.update(actual=None, passed=False, error=str(exc).strip())
                results.append(entry)
                continue
            if len(rows) != 1 or len(rows[0]) != 1:
                shape = f"{len(rows)} rows" + (f" of {len(rows[0])} columns" if rows else "")
                entry.update(actual=None, passed=False, error=f"must return one row of one column, returned {shape}")
            else:
                value = rows[0][0]
                entry.update(actual=as_text(value), passed=_matches(value, expected))
            results.append(entry)
    failed = [r for r in results if not r["passed"]]
    return {"server": conn.describe(), "passed": not failed, "checks": results, "failed": [r["name"] for r in failed]}


_TRUE = frozenset({"t", "true", "on", "yes", "1"})
_FALSE = frozenset({"f", "false", "off", "no", "0"})


def _matches(value: object, expected: str) -> bool:
    if isinstance(value, bool):
        return expected.strip().lower() in (_TRUE if value else _FALSE)
    return as_text(value) == expected.strip()


def mismatch_lines(report: Mapping[str, Any]) -> list[str]:
    """One line per failed check: what was expected and what came back (or the error)."""
    lines = []
    for check in report["checks"]:
        if check["passed"]:
            continue
        got = f"error: {check['error']}" if check.get("error") else f"got {check['actual']!r}"
        lines.append(f"{check['name']}: expected {check['expected']!r}, {got}")
    return lines
