"""Health facts about a PostgreSQL server, asked over a normal connection."""

from __future__ import annotations

from typing import Any

from drflow.engines.postgres.conninfo import PgConnInfo


class SourceNotReadyError(RuntimeError):
    pass


def check_backup_source(conn: PgConnInfo, *, expected_major: int) -> dict[str, Any]:
    """Check the server can give a base backup; raise with what is wrong and what to do otherwise."""
    import psycopg

    try:
        with psycopg.connect(**conn.libpq_kwargs(connect_timeout=10)) as connection:
            row = connection.execute(
                "select current_setting('server_version_num')::int,"
                " current_setting('server_version'),"
                " pg_is_in_recovery(),"
                " (select rolreplication or rolsuper from pg_roles where rolname = current_user),"
                " current_setting('max_wal_senders')::int,"
                " (select system_identifier from pg_control_system())"
            ).fetchone()
    except psycopg.OperationalError as exc:
        raise SourceNotReadyError(
            f"cannot connect to {conn.dsn()}: {str(exc).strip()}; "
            "check that the server is up and that the Airflow connection points at it"
        ) from exc
    assert row is not None
    version_num, version, in_recovery, can_replicate, max_wal_senders, system_identifier = row
    major = version_num // 10000
    problems = []
    if major != expected_major:
        problems.append(
            f"server is PostgreSQL {major} but the spec says version {expected_major}; "
            "set datastore.version (and bin_dir) to match the server"
        )
    if not can_replicate:
        problems.append(
            f"role {conn.user!r} may not stream a base backup; grant it REPLICATION (ALTER ROLE … REPLICATION)"
        )
    if max_wal_senders < 2:
        problems.append("max_wal_senders is below 2; pg_basebackup -X stream needs two WAL senders")
    if problems:
        raise SourceNotReadyError(f"{conn.dsn()} cannot be backed up: " + "; ".join(problems))
    return {
        "server_version": version,
        "in_recovery": bool(in_recovery),
        "system_identifier": str(system_identifier),
    }
