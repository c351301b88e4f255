"""`drflow pgbackrest-config` and `drflow restore-table` (mounted on the main app by drflow.cli)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from drflow.cli.common import err, fail, load_one, out
from drflow.units import human_duration


def pgbackrest_config(
    spec_path: Path, component: str, output: Path | None, pg_port: int | None, pg_user: str | None
) -> None:
    """Print (or write, mode 640, owned by the database OS user) the pgbackrest.conf of a stanza; never a key."""
    from drflow.engines.postgres.pgbackrest_config import PgBackRestError, S3Access, render_config, stanza_settings

    loaded = load_one(spec_path)
    chosen = _component(loaded, spec_path, component)
    try:
        settings = stanza_settings(loaded.spec, chosen)
    except PgBackRestError as exc:
        raise fail(str(exc)) from None
    if pg_port is None or pg_user is None:
        conn = _primary_conn(
            chosen.postgres.primary.conn_id, chosen.postgres.database, "or give --pg-port and --pg-user"
        )
        pg_port = pg_port or conn.port
        pg_user = pg_user or conn.user
    s3: dict[str, S3Access] = {}
    for repo in settings.repos:
        if repo.type != "s3":
            continue
        conn_id = str(repo.target["conn_id"])
        try:
            s3[repo.name] = S3Access.from_airflow_conn(conn_id, str(repo.target["region"]), credentials=False)
        except PgBackRestError as exc:
            raise fail(f"storage target {repo.name}: {exc}") from None
        except Exception as exc:  # no such connection here: the DB host often has no Airflow connections
            err.print(
                f"note: storage target {repo.name}: cannot read Airflow connection {conn_id!r} ({exc}); "
                f"rendered AWS's endpoint for region {repo.target['region']}",
                highlight=False,
                markup=False,
            )
    text = render_config(settings, pg_port=pg_port, pg_user=pg_user, s3=s3, source=str(spec_path))
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    output.chmod(0o640)
    from drflow.hosts import LocalHost

    host = LocalHost()
    host.chown_to_db_user(output)  # pgBackRest reads it as the database OS user (a no-op unless root)
    out.print(
        f"wrote {output} for {host.db_user} (stanza {settings.stanza}, {len(settings.repos)} repositories)",
        highlight=False,
    )


def restore_table(
    spec_path: Path,
    component: str,
    table: str,
    schema: str,
    conn_id: str | None,
    dsn: str | None,
    backup: str | None,
    target: str | None,
    replace: bool,
) -> None:
    """Restore one table of the newest (or the given) pg_dump backup into a database, from its first intact copy."""
    from drflow.engines.postgres.bindir import datastore_bin_dir
    from drflow.engines.postgres.pgdump import LogicalBackupError
    from drflow.jobs.logical import LOGICAL_DUMPS, restore_table_from_copies
    from drflow.jobs.restore import NoBackupError, find_copies
    from drflow.store.base import StoreError
    from drflow.store.factory import target_catalogs

    if (conn_id is None) == (dsn is None):
        raise fail("give the database to restore into with exactly one of --conn-id ID or --dsn 'host=… dbname=…'")
    loaded = load_one(spec_path, incident=True, component=component, target=target)
    chosen = _component(loaded, spec_path, component)
    targets = [t.model_dump(mode="json") for t in loaded.spec.storage if target in (None, t.name)]
    if not targets:
        raise fail(
            f"no storage target {target!r} in {spec_path}; known: {', '.join(t.name for t in loaded.spec.storage)}"
        )
    database = chosen.postgres.database
    conn = _primary_conn(conn_id, database, "or give the target as --dsn") if conn_id else _dsn_conn(str(dsn), database)

    def warn(message: str) -> None:
        err.print(f"warning: {message}", highlight=False, markup=False)

    try:
        choice = find_copies(target_catalogs(loaded.spec.metadata.name, targets), component, backup, kind=LOGICAL_DUMPS)
        for name, why in choice.unreadable:
            warn(f"skipped storage target {name}: {why}")
        result, copy = restore_table_from_copies(
            choice,
            table,
            conn,
            bin_dir=datastore_bin_dir(chosen.postgres.bin_dir, chosen.postgres.version),
            schema=schema,
            replace=replace,
            say=warn,
        )
    except (NoBackupError, LogicalBackupError, StoreError) as exc:
        raise fail(str(exc)) from None
    manifest = copy.manifest
    verb = "replaced" if result.replaced else "restored"
    out.print(
        f"{verb} table {schema}.{table} ({result.rows} rows) from backup {manifest.backup_id} "
        f"(taken {manifest.finished_at:%Y-%m-%d %H:%M:%S} UTC, from {copy.target}) into {conn.describe()} "
        f"in {human_duration(result.duration_s)}",
        highlight=False,
    )
    out.print("  with: " + ", ".join(result.restored), highlight=False, markup=False)
    if result.not_restored_fks:
        err.print(
            "note: foreign keys of other tables that pointed at it were not restored (that would change those "
            f"tables): {', '.join(result.not_restored_fks)}; re-create them if they were dropped with it",
            highlight=False,
            markup=False,
        )


def _component(loaded: Any, spec_path: Path, name: str) -> Any:
    try:
        component = loaded.spec.component(name)
    except KeyError:
        known = ", ".join(c.name for c in loaded.spec.components)
        raise fail(f"no component {name!r} in {spec_path}; known: {known}") from None
    if component.postgres is None:
        kind = f"a {component.datastore.type} datastore" if component.datastore is not None else "no datastore"
        raise fail(f"component {name!r} has {kind}; this command needs a postgres one (name a database component)")
    return component


def _primary_conn(conn_id: str, database: str, instead: str = "") -> Any:
    """The connection's libpq settings, or exit saying how to define it (or, `instead`, what to give)."""
    from drflow.engines.postgres.conninfo import PgConnInfo

    try:
        return PgConnInfo.from_airflow_conn(conn_id, dbname=database)
    except Exception as exc:  # AirflowNotFoundException and friends
        env = f"AIRFLOW_CONN_{conn_id.upper()}"
        # drflow's own "not defined" message already says how to define it; others do not.
        said = str(exc)
        head = "" if repr(conn_id) in said else f"cannot read Airflow connection {conn_id!r}: "
        how = "" if env in said else f"; export {env} (see `drflow sandbox up`)"
        raise fail(f"{head}{said}{how}" + (f", {instead}" if instead else "")) from None


def _dsn_conn(dsn: str, database: str) -> Any:
    import getpass

    from psycopg.conninfo import conninfo_to_dict

    from drflow.engines.postgres.conninfo import PgConnInfo

    try:
        params = conninfo_to_dict(dsn)
    except Exception as exc:
        raise fail(f"--dsn is not a libpq connection string: {exc}; e.g. 'host=127.0.0.1 port=5432 user=app'") from None
    password = params.get("password") or os.environ.get("PGPASSWORD")
    return PgConnInfo(
        host=str(params.get("host") or os.environ.get("PGHOST") or "127.0.0.1"),
        port=int(params.get("port") or os.environ.get("PGPORT") or 5432),
        user=str(params.get("user") or os.environ.get("PGUSER") or getpass.getuser()),
        password=str(password) if password else None,
        dbname=str(params.get("dbname") or database),
    )
