"""Validation queries: one value each, compared as text between backup time and restore time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drflow.engines.postgres.conninfo import PgConnInfo


class ValidationQueryError(RuntimeError):
    pass


def run_validation_queries(conn: PgConnInfo, queries: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Run each query in one read-only transaction (one snapshot) and return name -> value as text."""
    if not queries:
        return {}
    import psycopg

    values: dict[str, str] = {}
    with psycopg.connect(**conn.libpq_kwargs(connect_timeout=10)) as connection:
        connection.read_only = True
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with connection.transaction(), connection.cursor() as cursor:
            for query in queries:
                try:
                    cursor.execute(str(query["query"]))  # reviewed SQL from the spec, never user input
                    row = cursor.fetchone()
                except psycopg.Error as exc:
                    raise ValidationQueryError(
                        f"validation query {query['name']!r} failed on {conn.dsn()}: {exc}".strip()
                        + "; fix the query in the spec or create the objects it reads"
                    ) from exc
                if row is None or len(row) != 1:
                    raise ValidationQueryError(
                        f"validation query {query['name']!r} must return exactly one row with one column"
                    )
                values[str(query["name"])] = "NULL" if row[0] is None else str(row[0])
    return values
