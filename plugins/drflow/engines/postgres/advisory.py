"""A session-level advisory lock on a PostgreSQL server: backups of one cluster taken one at a time.

Several components' backup DAGs of one cluster run in the same schedule slot; the first to hold the
lock takes the shared backup, the others wait for it and then record it (see
:mod:`drflow.jobs.cluster_backup`). Advisory locks live in the server's memory (they work on a hot
standby too) and go with the session, so a killed task never leaves one behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from drflow.engines.postgres.conninfo import PgConnInfo


class LockTimeout(RuntimeError):
    """The lock was not granted in time; the message says who to wait for."""


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (what ``pg_advisory_lock(bigint)`` takes)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def advisory_lock(conn: PgConnInfo, name: str, *, timeout_s: float | None) -> Iterator[str]:
    """Hold the advisory lock ``name`` on the server of ``conn`` (waiting up to ``timeout_s``; None: no
    limit); yields the server's system identifier, so callers know which cluster they locked."""
    import psycopg

    key = lock_key(name)
    with psycopg.connect(**conn.libpq_kwargs(connect_timeout=10), autocommit=True) as db:
        if timeout_s is not None:
            db.execute("select set_config('lock_timeout', %s, false)", (f"{max(1, int(timeout_s * 1000))}ms",))
        try:
            db.execute("select pg_advisory_lock(%s)", (key,))
        except psycopg.errors.LockNotAvailable:
            raise LockTimeout(
                f"another backup of {conn.describe()} held the lock {name!r} for more than {timeout_s:.0f}s; "
                "it is still running (see the other components' backup DAGs of this cluster): retry when it is done"
            ) from None
        row = db.execute("select system_identifier::text from pg_control_system()").fetchone()
        try:
            yield str(row[0]) if row else ""
        finally:
            db.execute("select pg_advisory_unlock(%s)", (key,))
