"""Validation suites: run a drill's or a plan step's checks against a database and the network, and record on the
source, right after a backup, the values the data and performance checks compare with later.

Who may write where: every query reads (checks: one statement, read-only, with a timeout); only on a
restored copy (``SuiteTarget.scratch``) does drflow create what a check needs — the amcheck extension,
pgbench's tables in a database of their own — and removes both again afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg

from drflow.engines.postgres.checks import (
    CheckRefused,
    as_text,
    fetch_value,
    matches,
    read_only_connection,
    timeout_seconds,
)
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.pgbench import SCRATCH_DATABASE, PgbenchError, init_select_only, run_read_only
from drflow.engines.postgres.queries import ValidationQueryError, read_validation_values
from drflow.engines.postgres.validation_amcheck import AmcheckMissing, check_indexes, create_amcheck, drop_amcheck
from drflow.engines.postgres.validation_data import (
    constraint_violations,
    orphans,
    pin_settings,
    row_count,
    snapshot_lsn,
    table_checksum,
)
from drflow.jobs.validation_http import run_http, run_http_latency, run_integration
from drflow.jobs.validation_results import (
    CheckResult,
    Measure,
    SuiteResult,
    at_most,
    ratio_at_least,
    tps_at_least,
    within,
)
from drflow.spec.validation import (
    CATEGORY,
    AmcheckCheck,
    ChecksumCheck,
    ConstraintsCheck,
    HttpCheck,
    HttpLatencyCheck,
    IntegrationCheck,
    OrphansCheck,
    PgbenchCheck,
    RowCountCheck,
    SqlCheck,
    ValidationEntry,
    needs_baseline,
    parse_checks,
    pgbench_key,
    qualified,
)
from drflow.store.manifest import PgbenchBaseline, TableChecksum, ValidationBaseline

log = logging.getLogger(__name__)
# What a check that cannot measure reports instead of crashing the drill or the step.
MEASURE_ERRORS = (psycopg.Error, CheckRefused, PgbenchError, AmcheckMissing, LookupError, ValueError, OSError)


@dataclass(frozen=True)
class SuiteTarget:
    """Where a suite's database checks run."""

    conn: PgConnInfo | None
    """The database the data and pgbench checks read; None for a suite of network checks only."""
    scratch: bool = False
    """A restored copy: drflow may create the amcheck extension and pgbench's tables there (and removes them)."""
    bin_dir: Path | None = None
    """PostgreSQL programs (pgbench)."""
    recorded: Mapping[str, str] = field(default_factory=dict)
    """SQL values recorded at backup time, for `sql` checks without `expected`."""
    baseline: ValidationBaseline | None = None
    """What typed checks compare with: recorded on the source right after the backup that was restored."""
    baseline_note: str = "no backup was restored here"
    """Why there is no baseline, for the checks that need one."""


def run_suite(checks: Sequence[ValidationEntry], target: SuiteTarget) -> SuiteResult:
    """Run every check; one that cannot measure fails alone, saying why."""
    results = []
    for check in checks:
        try:
            result = _run(check, target)
        except MEASURE_ERRORS as exc:
            result = CheckResult(check.name, check.type, CATEGORY[check.type], error=_why(exc))
        if result.passed:
            log.info("PASS %s (%s)", check.name, check.type)
        else:
            log.warning("FAIL %s", result.problem())
        results.append(result)
    return SuiteResult(tuple(results))


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, CheckRefused):
        return f"refused: {text}"
    if isinstance(exc, psycopg.OperationalError):
        return f"cannot reach the database: {text}"
    return text


def _run(check: ValidationEntry, target: SuiteTarget) -> CheckResult:
    if isinstance(check, HttpCheck):
        return run_http(check)
    if isinstance(check, IntegrationCheck):
        return run_integration(check)
    if isinstance(check, HttpLatencyCheck):
        return run_http_latency(check)
    if target.conn is None:
        raise ValueError("this check reads a database, but the step names no node; set node: in the spec")
    if isinstance(check, PgbenchCheck):
        return _pgbench(check, target.conn, target)
    timeout_s = timeout_seconds(check.statement_timeout)
    if isinstance(check, AmcheckCheck):
        return _amcheck(check, target.conn, target.scratch, timeout_s)
    with read_only_connection(target.conn) as db, db.transaction():
        if isinstance(check, SqlCheck):
            return _sql(check, db, target, timeout_s)
        pin_settings(db)  # a row's text (checksums, orphan samples) depends on output settings
        if isinstance(check, ChecksumCheck):
            return _checksum(check, db, target, timeout_s)
        if isinstance(check, RowCountCheck):
            return _row_count(check, db, target, timeout_s)
        if isinstance(check, ConstraintsCheck):
            return _constraints(check, db, timeout_s)
        if isinstance(check, OrphansCheck):
            found = orphans(db, check.query, timeout_s=timeout_s)
            return _result(check, [at_most("orphans", check.max, found.count)], sample=found.sample)
    raise TypeError(f"no runner for validation check type {check.type!r}")  # the union and this list drifted


def _result(check: ValidationEntry, measures: Sequence[Measure], **detail: Any) -> CheckResult:
    return CheckResult(check.name, check.type, CATEGORY[check.type], tuple(measures), detail=detail)


def _sql(check: SqlCheck, db: psycopg.Connection[Any], target: SuiteTarget, timeout_s: float) -> CheckResult:
    expected = check.expected if check.expected is not None else target.recorded.get(check.name)
    if expected is None:
        raise LookupError(
            f"no expected value: the spec gives none and nothing was recorded at backup time ({target.baseline_note})"
        )
    value = fetch_value(db, check.query, timeout_s=timeout_s)
    passed = matches(value, expected)
    return _result(check, [Measure("value", str(expected), as_text(value), passed, None if passed else "differs")])


def _checksum(check: ChecksumCheck, db: psycopg.Connection[Any], target: SuiteTarget, timeout_s: float) -> CheckResult:
    def judge(key: str, recorded: TableChecksum, got: tuple[int, str]) -> Measure:
        rows, checksum = got
        same = recorded.checksum == checksum and recorded.rows == rows
        by = f"{rows - recorded.rows:+d} rows" + ("" if rows != recorded.rows else ", same count, other content")
        expected = f"{recorded.checksum} over {recorded.rows} rows"
        return Measure(key, expected, f"{checksum} over {rows} rows", same, None if same else by)

    def read(schema: str, name: str) -> tuple[int, str]:
        return table_checksum(db, schema, name, timeout_s=timeout_s)

    return _against_backup(check, check.tables, target, "checksums", read, judge)


def _row_count(check: RowCountCheck, db: psycopg.Connection[Any], target: SuiteTarget, timeout_s: float) -> CheckResult:
    def read(schema: str, name: str) -> int:
        return row_count(db, schema, name, timeout_s=timeout_s)

    def judge(key: str, recorded: int, got: int) -> Measure:
        return within(key, recorded, got, check.tolerance)

    return _against_backup(check, check.tables, target, "row_counts", read, judge)


def _against_backup(
    check: ValidationEntry,
    tables: Sequence[str],
    target: SuiteTarget,
    kind: Literal["checksums", "row_counts"],
    read: Callable[[str, str], Any],
    judge: Callable[[str, Any, Any], Measure],
) -> CheckResult:
    """Each table measured on the copy, judged against the value the backup recorded for it."""
    if target.baseline is None:
        raise LookupError(f"nothing to compare with: no values were recorded at backup time ({target.baseline_note})")
    recorded_values: Mapping[str, Any] = getattr(target.baseline, kind)
    measures = []
    for table in tables:
        schema, name = qualified(table)
        key = f"{schema}.{name}"
        got = read(schema, name)
        recorded = recorded_values.get(key)
        if recorded is None:
            shown = f"{got[1]} over {got[0]} rows" if isinstance(got, tuple) else str(got)
            measures.append(
                Measure(key, "a value recorded at backup time", shown, False, "none recorded: take a new backup")
            )
        else:
            measures.append(judge(key, recorded, got))
    return _result(check, measures, recorded_lsn=target.baseline.lsn)


def _constraints(check: ConstraintsCheck, db: psycopg.Connection[Any], timeout_s: float) -> CheckResult:
    found = constraint_violations(db, [qualified(t) for t in check.tables], timeout_s=timeout_s)
    measures = [
        at_most(
            f"{v.kind} {v.constraint} on {v.table}" + ("" if v.validated else " (NOT VALID)"),
            0,
            v.rows,
            "violating rows",
        )
        for v in found
        if v.rows
    ]
    return _result(check, measures, constraints=len(found), not_valid=[v.constraint for v in found if not v.validated])


def _amcheck(check: AmcheckCheck, conn: PgConnInfo, scratch: bool, timeout_s: float) -> CheckResult:
    created = create_amcheck(conn) if scratch else False
    try:
        with read_only_connection(conn) as db, db.transaction():
            try:
                verdicts = check_indexes(db, heapallindexed=check.heapallindexed, timeout_s=timeout_s)
            except AmcheckMissing as exc:
                raise AmcheckMissing(
                    f"{exc} ({conn.describe()}); drflow creates it only on restored copies: run this check on "
                    "node: restored, or install it there (CREATE EXTENSION amcheck)"
                ) from None
    finally:
        if created:
            drop_amcheck(conn)
    bad = [v for v in verdicts if v.error]
    measures = [
        Measure(
            "btree indexes",
            f"all {len(verdicts)} intact",
            f"{len(verdicts) - len(bad)} intact",
            not bad,
            f"{len(bad)} corrupt" if bad else None,
        )
    ]
    measures += [Measure(v.index, "intact", str(v.error), False, f"index of {v.table}") for v in bad]
    return _result(check, measures, indexes=len(verdicts), heapallindexed=check.heapallindexed)


def _pgbench(check: PgbenchCheck, conn: PgConnInfo, target: SuiteTarget) -> CheckResult:
    if target.bin_dir is None:
        raise ValueError("no PostgreSQL binaries known for pgbench; set the datastore's bin_dir")
    duration = int(check.duration.total_seconds())
    timeout_s = timeout_seconds(check.statement_timeout)
    baseline_tps = None
    if check.script is not None:
        run = run_read_only(
            conn,
            target.bin_dir,
            duration_s=duration,
            clients=check.clients,
            script=check.script,
            statement_timeout_s=timeout_s,
        )
        measures = []
        recorded = target.baseline.pgbench.get(pgbench_key(check)) if target.baseline else None
        if recorded is None:
            measures.append(
                Measure(
                    "tps",
                    "a baseline recorded on the source at backup time",
                    f"{run.tps:.1f} tps",
                    False,
                    f"no baseline ({target.baseline_note})"
                    if target.baseline is None
                    else "none recorded: take a new backup",
                )
            )
        else:
            measures.append(ratio_at_least("tps", recorded.tps, run.tps, check.min_ratio))
            baseline_tps = recorded.tps
    else:
        if not target.scratch:
            raise ValueError(
                "refused: the built-in select-only run needs pgbench's tables, which drflow creates only on a "
                "restored copy; run it on node: restored (or in a drill), or give a script of read-only queries"
            )
        run = _select_only_on_scratch(check, conn, target.bin_dir, duration, timeout_s)
        measures = []
    if check.min_tps is not None:
        measures.append(tps_at_least("tps", check.min_tps, run.tps))
    if run.failed:
        measures.append(at_most("failed transactions", 0, run.failed, "transactions"))
    return _result(
        check,
        measures,
        tps=run.tps,
        baseline_tps=baseline_tps,
        latency_ms=run.latency_ms,
        transactions=run.transactions,
        clients=run.clients,
        duration_s=run.duration_s,
    )


def _select_only_on_scratch(
    check: PgbenchCheck, conn: PgConnInfo, bin_dir: Path, duration: int, timeout_s: float
) -> Any:
    from psycopg import sql

    from drflow.engines.postgres.node import connect

    scratch = conn.with_dbname(SCRATCH_DATABASE)
    with connect(conn.with_dbname("postgres")) as admin:
        admin.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(SCRATCH_DATABASE)))
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(SCRATCH_DATABASE)))
    try:
        init_select_only(scratch, bin_dir, scale=check.scale)
        return run_read_only(
            scratch, bin_dir, duration_s=duration, clients=check.clients, script=None, statement_timeout_s=timeout_s
        )
    finally:
        with connect(conn.with_dbname("postgres")) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(SCRATCH_DATABASE)))


# -- at backup time ---------------------------------------------------------------------------------------------


def record_at_backup(
    conn: PgConnInfo, entries: Sequence[Mapping[str, Any]], *, bin_dir: Path | None
) -> tuple[dict[str, str], ValidationBaseline | None]:
    """The SQL checks' values and the typed checks' baseline, read on the source in one repeatable-read
    snapshot right after the backup; then the pgbench baselines. A check that cannot be read fails the backup,
    saying which and what to do (as SQL values always have)."""
    checks = [c for c in parse_checks(list(entries)) if not isinstance(c, SqlCheck) and needs_baseline(c)]
    sql_entries = [e for e in entries if e.get("type", "sql") == "sql"]
    if not checks and not sql_entries:
        return {}, None
    with read_only_connection(conn) as db:
        db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with db.transaction():
            values = {name: as_text(v) for name, v in read_validation_values(db, sql_entries, conn).items()}
            if not checks:
                return values, None
            pin_settings(db)
            lsn = snapshot_lsn(db, timeout_s=60)
            checksums: dict[str, TableChecksum] = {}
            counts: dict[str, int] = {}
            for check in checks:
                if not isinstance(check, ChecksumCheck | RowCountCheck):
                    continue
                timeout_s = timeout_seconds(check.statement_timeout)
                for table in check.tables:
                    schema, name = qualified(table)
                    key = f"{schema}.{name}"
                    try:
                        with db.transaction():
                            if isinstance(check, ChecksumCheck) and key not in checksums:
                                rows, checksum = table_checksum(db, schema, name, timeout_s=timeout_s)
                                checksums[key] = TableChecksum(rows=rows, checksum=checksum)
                                counts.setdefault(key, rows)
                            elif isinstance(check, RowCountCheck) and key not in counts:
                                counts[key] = row_count(db, schema, name, timeout_s=timeout_s)
                    except (psycopg.Error, CheckRefused) as exc:
                        raise ValidationQueryError(
                            f"validation check {check.name!r} ({check.type}) could not read {key} on "
                            f"{conn.describe()}: {str(exc).strip()}; fix the table name in the spec or create the table"
                        ) from exc
    pgbench: dict[str, PgbenchBaseline] = {}
    for check in checks:
        if isinstance(check, PgbenchCheck) and check.script is not None and bin_dir is not None:
            key = pgbench_key(check)
            if key in pgbench:
                continue
            try:
                run = run_read_only(
                    conn,
                    bin_dir,
                    duration_s=int(check.duration.total_seconds()),
                    clients=check.clients,
                    script=check.script,
                    statement_timeout_s=timeout_seconds(check.statement_timeout),
                )
            except PgbenchError as exc:
                raise ValidationQueryError(f"validation check {check.name!r} (pgbench baseline): {exc}") from exc
            pgbench[key] = PgbenchBaseline(
                tps=run.tps,
                latency_ms=run.latency_ms,
                clients=run.clients,
                duration_s=run.duration_s,
                transactions=run.transactions,
            )
    baseline = ValidationBaseline(
        recorded_at=datetime.now(UTC), lsn=lsn, checksums=checksums, row_counts=counts, pgbench=pgbench
    )
    return values, baseline
