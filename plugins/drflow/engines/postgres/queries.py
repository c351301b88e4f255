"""Validation queries: one value each, recorded at backup time and compared at restore time.

They run as checks (:mod:`drflow.engines.postgres.checks`): one read-only statement each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drflow.engines.postgres.conninfo import PgConnInfo


class ValidationQueryError(RuntimeError):
    pass


def read_validation_values(
    db: Any, queries: Sequence[Mapping[str, Any]], conn: PgConnInfo, *, savepoints: bool = False
) -> dict[str, Any]:
    """Run each query as a check in the read-only transaction ``db`` has open; name -> raw value.

    With ``savepoints`` each runs in its own savepoint (a failure leaves the transaction usable).
    """
    import contextlib

    import psycopg

    from drflow.engines.postgres.checks import CheckRefused, fetch_value, timeout_seconds

    values: dict[str, Any] = {}
    for query in queries:
        if query.get("type", "sql") != "sql":
            continue  # typed checks of a validation suite measure themselves (drflow.jobs.validation)
        name = str(query["name"])
        try:
            with db.transaction() if savepoints else contextlib.nullcontext():
                values[name] = fetch_value(
                    db, str(query["query"]), timeout_s=timeout_seconds(query.get("statement_timeout"))
                )
        except CheckRefused as exc:
            raise ValidationQueryError(f"validation query {name!r} refused: {exc}") from exc
        except psycopg.Error as exc:
            raise ValidationQueryError(
                f"validation query {name!r} failed on {conn.describe()}: {str(exc).strip()}; "
                "fix the query in the spec or create the objects it reads"
            ) from exc
    return values


def read_validation_queries(conn: PgConnInfo, queries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Run every query in one read-only repeatable-read transaction (one snapshot); name -> raw value."""
    if not any(query.get("type", "sql") == "sql" for query in queries):
        return {}
    import psycopg

    from drflow.engines.postgres.checks import read_only_connection

    with read_only_connection(conn) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with connection.transaction():
            return read_validation_values(connection, queries, conn)


def run_validation_queries(conn: PgConnInfo, queries: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """:func:`read_validation_queries` as text (``true``/``false``, ``NULL``), as the catalog records them."""
    from drflow.engines.postgres.checks import as_text

    return {name: as_text(value) for name, value in read_validation_queries(conn, queries).items()}
