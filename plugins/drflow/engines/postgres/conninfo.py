"""How to reach a PostgreSQL server, without ever putting a password in argv or a log."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CONNECT_TIMEOUT_S = 10
"""Seconds to wait for a server to answer a new connection, unless the connection's extras say otherwise."""

# libpq parameters taken from an Airflow connection's extras; other extras are ignored.
LIBPQ_EXTRA_KEYS: dict[str, str] = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


@dataclass(frozen=True)
class PgConnInfo:
    host: str
    port: int
    user: str
    password: str | None = field(default=None, repr=False)
    dbname: str = "postgres"
    options: Mapping[str, str] = field(default_factory=dict)
    """Further libpq parameters (keys of :data:`LIBPQ_EXTRA_KEYS`), e.g. ``sslmode``."""

    def __post_init__(self) -> None:
        unknown = set(self.options) - set(LIBPQ_EXTRA_KEYS)
        if unknown:
            raise ValueError(f"unsupported libpq options {sorted(unknown)}; allowed: {sorted(LIBPQ_EXTRA_KEYS)}")

    def libpq_kwargs(self, *, connect_timeout: int = CONNECT_TIMEOUT_S) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect`` (includes the password).

        Always carries a ``connect_timeout``: the connection's own (its extras) if set, else the
        caller's default. Pass every other libpq parameter through here too, never beside these
        kwargs, or a parameter set in both places breaks the call.
        """
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
            "connect_timeout": connect_timeout,
            **self.options,
        }
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs

    def dsn(self) -> str:
        """A libpq connection string WITHOUT the password, safe for argv and logs."""
        from psycopg.conninfo import make_conninfo  # psycopg loads in ~0.2 s; most CLI paths never need it

        return make_conninfo(
            "", host=self.host, port=str(self.port), user=self.user, dbname=self.dbname, **self.options
        )

    def env(self) -> dict[str, str]:
        """Environment variables for client subprocesses; the password travels only here."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.dbname,
            "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S),
        }
        for key, value in self.options.items():
            env[LIBPQ_EXTRA_KEYS[key]] = str(value)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    def with_dbname(self, dbname: str) -> PgConnInfo:
        return dataclasses.replace(self, dbname=dbname)

    def describe(self) -> str:
        """``user@host:port/dbname``, for messages."""
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"

    @classmethod
    def from_airflow_conn(cls, conn_id: str, dbname: str | None = None) -> PgConnInfo:
        """Read an Airflow connection (``AIRFLOW_CONN_*`` env vars work without a metadata DB).

        ``dbname`` overrides the connection's schema; the default database is ``postgres``.
        """
        # Through Airflow in tasks; from AIRFLOW_CONN_* without importing Airflow on the incident CLI.
        from drflow.connections import get_connection

        conn = get_connection(conn_id)
        if not conn.host:
            raise ValueError(f"Airflow connection {conn_id!r} has no host; set one in the connection")
        if not conn.login:
            raise ValueError(f"Airflow connection {conn_id!r} has no login; set the role to connect as")
        options = {k: str(v) for k, v in conn.extra.items() if k in LIBPQ_EXTRA_KEYS}
        return cls(
            host=conn.host,
            port=int(conn.port or 5432),
            user=conn.login,
            password=conn.password or None,
            dbname=dbname or conn.schema or "postgres",
            options=options,
        )


def replication_hint(stderr: str) -> str | None:
    """What to do about a replication connection the primary refused (pg_basebackup, pg_receivewal): the role's
    REPLICATION attribute, pg_hba.conf, free WAL senders; None when ``stderr`` names none of these."""
    text = stderr.lower()
    if "must be superuser or replication role" in text or "permission denied" in text:
        return "hint: the role needs the REPLICATION attribute (ALTER ROLE ... REPLICATION)"
    if "pg_hba.conf" in text:
        return "hint: pg_hba.conf on the primary needs a 'replication' line for this role and address"
    if "max_wal_senders" in text or "too many clients" in text:
        return "hint: the primary has no free WAL sender; raise max_wal_senders or stop other backups"
    return None
