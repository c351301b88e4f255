"""Logical backups: a custom-format ``pg_dump`` of one database, and restoring one table of it.

The dump runs in a snapshot that drflow exports itself, so the WAL position, the database size and
the validation values it records describe exactly the data in the dump.

Restoring one table restores that table alone — its definition, data, constraints, indexes,
triggers, column defaults, owned sequences, comments and grants — in one transaction, and touches
nothing else of the target database. Foreign keys of *other* tables that pointed at it are reported,
not re-created (that would alter those tables). Plain and partitioned-parent tables are supported;
names are matched as pg_dump prints them (no spaces).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from drflow import process
from drflow.engines.postgres.checks import as_text
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.queries import read_validation_values
from drflow.hosts import tail
from drflow.units import human_duration

log = logging.getLogger(__name__)

DUMP_SUFFIX = ".pgdump"
# Multi-word TOC descriptions first, so "TABLE DATA" is not read as "TABLE" + schema "DATA".
_DESCS = (
    "SEQUENCE OWNED BY",
    "MATERIALIZED VIEW DATA",
    "MATERIALIZED VIEW",
    "FK CONSTRAINT",
    "CHECK CONSTRAINT",
    "SEQUENCE SET",
    "TABLE DATA",
    "INDEX ATTACH",
    "ROW SECURITY",
    "DEFAULT ACL",
    "FOREIGN TABLE",
)
_TOC_LINE = re.compile(r"^(?P<id>\d+);\s+\d+\s+\d+\s+(?P<rest>.+)$")
_HEADER = re.compile(r"^-- (?:Data for )?Name: (?P<tag>.*); Type: (?P<desc>[^;]+); Schema: (?P<schema>[^;]+);", re.M)
# Entries whose tag is "<table> <name>": they belong to the table named first.
_TABLE_PREFIXED = frozenset({"CONSTRAINT", "FK CONSTRAINT", "CHECK CONSTRAINT", "TRIGGER", "DEFAULT", "POLICY", "RULE"})
# Entries whose tag does not name their table: their SQL tells.
_BY_SQL = frozenset({"INDEX", "INDEX ATTACH", "STATISTICS", "SEQUENCE", "SEQUENCE OWNED BY", "FK CONSTRAINT"})
_BARE_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")


class LogicalBackupError(RuntimeError):
    """A dump or a table restore failed or was refused; the message says what to do."""


@dataclass(frozen=True)
class DumpResult:
    path: Path
    started_at: datetime
    finished_at: datetime
    duration_s: float
    compression: str
    server_version: str
    system_identifier: str
    snapshot_lsn: str
    database_size_bytes: int
    validation_values: dict[str, str] = field(default_factory=dict)


def client_major(bin_dir: Path) -> int:
    """The major version of the pg_dump in ``bin_dir``."""
    result = _run([str(bin_dir / "pg_dump"), "--version"], env=None, timeout=30, what="pg_dump --version")
    match = re.search(r"(\d+)(?:\.\d+)?", result)
    if not match:
        raise LogicalBackupError(f"cannot read the version of {bin_dir / 'pg_dump'}: {result!r}")
    return int(match.group(1))


def check_dump_source(conn: PgConnInfo, *, expected_major: int, bin_dir: Path) -> dict[str, Any]:
    """The database answers, is the spec's major version, and this pg_dump can dump it."""
    try:
        with psycopg.connect(**conn.libpq_kwargs(connect_timeout=10)) as db:
            row = db.execute("select current_setting('server_version_num')::int, current_setting('server_version')")
            version_num, version = row.fetchone() or (0, "")
    except psycopg.OperationalError as exc:
        raise LogicalBackupError(
            f"cannot connect to {conn.dsn()}: {str(exc).strip()}; "
            "check that the server is up, the database exists and the Airflow connection points at it"
        ) from exc
    major, client = int(version_num) // 10000, client_major(bin_dir)
    problems = []
    if major != expected_major:
        problems.append(
            f"server is PostgreSQL {major} but the spec says version {expected_major}; fix datastore.version"
        )
    if client < major:
        problems.append(f"pg_dump in {bin_dir} is version {client}, older than the server; set datastore.bin_dir")
    if problems:
        raise LogicalBackupError(f"{conn.dsn()} cannot be dumped: " + "; ".join(problems))
    return {"server_version": version, "pg_dump_major": client}


def dump_database(
    conn: PgConnInfo,
    out: Path,
    *,
    bin_dir: Path,
    compression: str = "zstd",
    validation: Sequence[Mapping[str, Any]] = (),
    timeout: float | None = None,
) -> DumpResult:
    """``pg_dump -Fc`` of ``conn``'s database into ``out``, in a snapshot exported here.

    zstd needs pg_dump 16; older ones compress with gzip (the result says which was used).
    """
    used, options = _compression(compression, client_major(bin_dir))
    # Created 0600 before pg_dump opens it (it keeps the mode): nobody else may ever read the dump.
    out.unlink(missing_ok=True)
    os.close(os.open(out, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    started = datetime.now(UTC)
    clock = time.monotonic()
    try:
        with psycopg.connect(**conn.libpq_kwargs(connect_timeout=10)) as db:
            db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            db.read_only = True
            with db.transaction():
                snapshot, lsn, size, version, sysid = _fetch_one(
                    db,
                    "select pg_export_snapshot(), pg_current_wal_lsn()::text, pg_database_size(current_database()),"
                    " current_setting('server_version'), (select system_identifier from pg_control_system())",
                )
                values = _validation_values(db, validation, conn)
                argv = [
                    str(bin_dir / "pg_dump"),
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    "--no-password",
                    *options,
                    f"--file={out}",
                    f"--dbname={conn.dsn()}",
                ]
                # The exporting transaction stays open until pg_dump is done with the snapshot.
                _run(argv, env=conn.env(), timeout=timeout, what=f"pg_dump of {conn.describe()}")
    except psycopg.Error as exc:
        out.unlink(missing_ok=True)
        raise LogicalBackupError(
            f"cannot dump {conn.describe()}: {str(exc).strip()}; is the primary up, and may the role connect, "
            "read every table and call pg_control_system()?"
        ) from exc
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    finished = datetime.now(UTC)
    return DumpResult(
        path=out,
        started_at=started,
        finished_at=finished,
        duration_s=round(time.monotonic() - clock, 3),
        compression=used,
        server_version=str(version).split()[0],
        system_identifier=str(sysid),
        snapshot_lsn=str(lsn),
        database_size_bytes=int(size),
        validation_values=values,
    )


def _compression(requested: str, client: int) -> tuple[str, list[str]]:
    if requested == "none":
        return "none", ["--compress=0"]
    if requested == "zstd" and client >= 16:
        return "zstd", ["--compress=zstd"]
    if requested in ("zstd", "gzip"):
        return "gzip", ["--compress=6"]
    raise LogicalBackupError(f"unknown compression {requested!r}; use zstd, gzip or none")


def _validation_values(
    db: psycopg.Connection[Any], queries: Sequence[Mapping[str, Any]], conn: PgConnInfo
) -> dict[str, str]:
    # Savepoints: a failing query leaves the exported snapshot usable for the message.
    values = read_validation_values(db, queries, conn, savepoints=True)
    return {name: as_text(value) for name, value in values.items()}


# -- the table of contents -------------------------------------------------------------------------


@dataclass(frozen=True)
class TocEntry:
    """One line of ``pg_restore --list``."""

    dump_id: int
    desc: str
    schema: str
    tag: str
    owner: str
    line: str


def read_toc(dump: Path, *, bin_dir: Path) -> list[TocEntry]:
    output = _run([str(bin_dir / "pg_restore"), "--list", str(dump)], env=None, timeout=300, what="pg_restore --list")
    entries = []
    for line in output.splitlines():
        match = _TOC_LINE.match(line)
        if not match:
            continue
        rest = match.group("rest")
        desc = next((d for d in _DESCS if rest.startswith(d + " ")), rest.split(" ", 1)[0])
        fields = rest[len(desc) + 1 :].split(" ")
        if len(fields) < 3:
            continue
        entries.append(TocEntry(int(match.group("id")), desc, fields[0], " ".join(fields[1:-1]), fields[-1], line))
    return entries


@dataclass(frozen=True)
class TablePlan:
    """The entries of a dump that make up one table, and what was left out."""

    schema: str
    table: str
    entries: list[TocEntry]
    referencing_fks: list[str]
    """Foreign keys of other tables that point at this one (not restored)."""


def plan_table(dump: Path, schema: str, table: str, *, bin_dir: Path) -> TablePlan:
    """Pick the TOC entries of ``schema.table`` (raises, listing the dump's tables, when it is not there)."""
    toc = read_toc(dump, bin_dir=bin_dir)
    if not any(e.desc == "TABLE" and e.schema == schema and e.tag == table for e in toc):
        tables = sorted(f"{e.schema}.{e.tag}" for e in toc if e.desc == "TABLE")
        raise LogicalBackupError(
            f"the dump has no table {schema}.{table}; it has: {', '.join(tables[:30]) or 'no tables'}"
            + (" …" if len(tables) > 30 else "")
        )
    chosen: set[int] = set()
    for e in toc:
        if e.schema != schema:
            continue
        if _belongs_by_name(e, table):
            chosen.add(e.dump_id)
    # Indexes, statistics and sequences are named by themselves: read their SQL to find their table.
    candidates = [e for e in toc if e.schema == schema and e.desc in _BY_SQL and e.dump_id not in chosen]
    blocks = _sql_blocks(dump, candidates, bin_dir=bin_dir)
    on_table = _qualified_pattern(schema, table)
    owned_sequences: set[str] = set()
    referencing: list[str] = []
    for e in candidates:
        text = blocks.get((e.desc, e.tag), "")
        if e.desc in ("INDEX", "INDEX ATTACH", "STATISTICS"):
            if re.search(rf"\b(?:ON|FROM)\s+(?:ONLY\s+)?{on_table}(?:\s|;|$)", text):
                chosen.add(e.dump_id)
        elif e.desc == "SEQUENCE OWNED BY" and re.search(rf"OWNED BY\s+{on_table}\.", text):
            owned_sequences.add(e.tag)
        elif e.desc == "SEQUENCE" and re.search(rf"ALTER TABLE\s+(?:ONLY\s+)?{on_table}\s", text):
            owned_sequences.add(e.tag)  # an identity column's sequence
        elif e.desc == "FK CONSTRAINT" and re.search(rf"REFERENCES\s+{on_table}\(", text):
            referencing.append(f"{e.schema}.{e.tag.replace(' ', ': ', 1)}")
    for e in toc:
        if e.schema == schema and e.tag in owned_sequences and e.desc.startswith("SEQUENCE"):
            chosen.add(e.dump_id)
    return TablePlan(schema, table, [e for e in toc if e.dump_id in chosen], sorted(referencing))


def _belongs_by_name(e: TocEntry, table: str) -> bool:
    if e.desc in ("TABLE", "TABLE DATA", "ROW SECURITY"):
        return e.tag == table
    if e.desc in _TABLE_PREFIXED:
        return e.tag.startswith(table + " ")
    return e.desc in ("COMMENT", "ACL") and _comment_or_acl_of(e.tag, table)


def _comment_or_acl_of(tag: str, table: str) -> bool:
    return (
        tag == f"TABLE {table}"
        or tag.startswith(f"COLUMN {table}.")
        or any(tag.startswith(kind) and tag.endswith(f" ON {table}") for kind in ("CONSTRAINT ", "TRIGGER ", "POLICY "))
    )


def _sql_blocks(dump: Path, entries: Sequence[TocEntry], *, bin_dir: Path) -> dict[tuple[str, str], str]:
    """The SQL of some entries, by (desc, tag), from one pg_restore run."""
    if not entries:
        return {}
    listing = dump.with_name(dump.name + ".probe.list")
    listing.write_text("".join(e.line + "\n" for e in entries))
    try:
        script = _run(
            [str(bin_dir / "pg_restore"), "--use-list", str(listing), "--file=-", str(dump)],
            env=None,
            timeout=300,
            what="pg_restore of index and sequence definitions",
        )
    finally:
        listing.unlink(missing_ok=True)
    headers = list(_HEADER.finditer(script))
    blocks: dict[tuple[str, str], str] = {}
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        end = following.start() if following else len(script)
        blocks[(header.group("desc").strip(), header.group("tag").strip())] = script[header.end() : end]
    return blocks


def _qualified_pattern(schema: str, table: str) -> str:
    return rf"{_ident_pattern(schema)}\.{_ident_pattern(table)}"


def _ident_pattern(name: str) -> str:
    quoted = re.escape('"' + name.replace('"', '""') + '"')
    return f"(?:{re.escape(name)}|{quoted})" if _BARE_IDENT.match(name) else quoted


# -- restoring one table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TableRestore:
    schema: str
    table: str
    rows: int
    replaced: bool
    restored: list[str]
    """What was restored: TOC descriptions and names, e.g. 'INDEX items_qty_idx'."""
    not_restored_fks: list[str]
    duration_s: float


def restore_table_from_dump(
    dump: Path,
    table: str,
    target: PgConnInfo,
    *,
    bin_dir: Path,
    schema: str = "public",
    replace: bool = False,
    timeout: float | None = None,
) -> TableRestore:
    """Restore ``schema.table`` from ``dump`` into ``target``'s database, in one transaction.

    Refuses, changing nothing, when the table exists there (unless ``replace``: then it is dropped
    and restored in the same transaction, which refuses in turn when other tables' foreign keys or
    views depend on it) or when its schema does not exist.
    """
    clock = time.monotonic()
    plan = plan_table(dump, schema, table, bin_dir=bin_dir)
    exists = _check_target(target, schema, table, replace)
    listing = dump.with_name(dump.name + f".{table}.list")
    listing.write_text("".join(e.line + "\n" for e in plan.entries))
    argv = [
        str(bin_dir / "pg_restore"),
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        f"--use-list={listing}",
        f"--dbname={target.dsn()}",
    ]
    if exists:
        argv += ["--clean", "--if-exists"]
    try:
        _run([*argv, str(dump)], env=target.env(), timeout=timeout, what=f"restore of {schema}.{table}")
    except LogicalBackupError as exc:
        raise LogicalBackupError(
            f"{exc}\nnothing was changed (the restore runs in one transaction); fix the cause above and run it again"
        ) from exc
    finally:
        listing.unlink(missing_ok=True)
    with psycopg.connect(**target.libpq_kwargs(connect_timeout=10)) as db:
        query = sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
        rows = int(_fetch_one(db, query)[0])
    return TableRestore(
        schema=schema,
        table=table,
        rows=rows,
        replaced=exists,
        restored=[f"{e.desc} {e.tag}" for e in plan.entries],
        not_restored_fks=plan.referencing_fks,
        duration_s=round(time.monotonic() - clock, 3),
    )


def _check_target(target: PgConnInfo, schema: str, table: str, replace: bool) -> bool:
    """Whether the table exists in the target; raises when restoring it would touch anything else."""
    name = f"{schema}.{table} in {target.describe()}"
    try:
        with psycopg.connect(**target.libpq_kwargs(connect_timeout=10)) as db:
            if not _fetch_one(db, "select count(*) from pg_namespace where nspname = %s", (schema,))[0]:
                raise LogicalBackupError(f"schema {schema} does not exist in {target.describe()}; create it first")
            relid = _fetch_one(
                db,
                "select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relname = %s",
                (schema, table),
                allow_none=True,
            )
            if relid is None:
                return False
            if not replace:
                raise LogicalBackupError(
                    f"table {name} exists; nothing was changed. Restore into another database, drop or rename it "
                    "first, or pass replace (--replace) to drop and restore it in one transaction"
                )
            blockers = [
                f"foreign key {r[0]} of table {r[1]}"
                for r in db.execute(
                    "select conname, conrelid::regclass::text from pg_constraint "
                    "where contype = 'f' and confrelid = %s and conrelid <> %s",
                    (relid[0], relid[0]),
                )
            ]
            blockers += [
                f"view {r[0]}"
                for r in db.execute(
                    "select distinct r.ev_class::regclass::text from pg_depend d "
                    "join pg_rewrite r on r.oid = d.objid where d.refobjid = %s and r.ev_class <> %s",
                    (relid[0], relid[0]),
                )
            ]
    except psycopg.OperationalError as exc:
        raise LogicalBackupError(f"cannot connect to {target.dsn()}: {str(exc).strip()}") from exc
    if blockers:
        raise LogicalBackupError(
            f"cannot replace {name}: {', '.join(blockers)} depend(s) on it, and replacing it would change them; "
            "nothing was changed. Drop those first, or restore the table into another database"
        )
    return True


def _fetch_one(db: psycopg.Connection[Any], query: Any, params: Any = None, *, allow_none: bool = False) -> Any:
    row = db.execute(query, params).fetchone()
    if row is None and not allow_none:
        raise LogicalBackupError(f"query returned no row: {query}")
    return row


def _run(argv: list[str], *, env: Mapping[str, str] | None, timeout: float | None, what: str) -> str:
    full_env = {**os.environ, **env} if env else None
    try:
        result = process.run(argv, env=full_env, timeout=timeout)
    except FileNotFoundError as exc:
        raise LogicalBackupError(f"cannot run {argv[0]}: {exc.strerror}; is datastore.bin_dir right?") from exc
    except subprocess.TimeoutExpired as exc:
        raise LogicalBackupError(
            f"{what} did not finish within {human_duration(exc.timeout)} and was stopped; raise the policy's timeout"
        ) from None
    if result.returncode != 0:
        raise LogicalBackupError(f"{what} failed with exit code {result.returncode}:\n{tail(result.stderr)}")
    return result.stdout
