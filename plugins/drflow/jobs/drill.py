"""Restore drill: prove a backup restores, and measure how long it takes against the objectives."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drflow.engines.postgres.checks import as_text, matches
from drflow.engines.postgres.queries import read_validation_queries
from drflow.hosts import Host
from drflow.jobs.restore import CopyChoice, restore_intact_copy, start_scratch_instance
from drflow.jobs.validation import SuiteTarget, run_suite
from drflow.spec.validation import SqlCheck, parse_checks
from drflow.units import human_duration
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)


def compare_validation(
    queries: Sequence[Mapping[str, Any]], recorded: Mapping[str, str], measured: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Each query's measured value against the spec's ``expected``, else the value recorded at backup time."""
    checks = []
    for query in queries:
        if query.get("type", "sql") != "sql":
            continue  # the suite's typed checks judge themselves (drflow.jobs.validation)
        name = str(query["name"])
        expected = query.get("expected")
        source = "spec"
        if expected is None:
            expected = recorded.get(name)
            source = "backup"
        actual = measured.get(name)
        checks.append(
            {
                "name": name,
                "expected": expected,
                "expected_from": source,
                "actual": as_text(actual) if name in measured else None,
                "passed": expected is not None and name in measured and matches(actual, expected),
            }
        )
    return checks


def run_restore_drill(
    choice: CopyChoice,
    *,
    database: str,
    validation: Sequence[Mapping[str, Any]],
    host: Host,
    bin_dir: Path,
    work_dir: str | None = None,
) -> dict[str, Any]:
    """Restore into a scratch instance, validate, tear it down (always); return the measurements.

    The backup comes from the first intact copy (the drill's target first), as a real restore would;
    copies skipped on the way are in ``skipped_copies`` and fail the verdict, since they need repair.
    """
    started_at = datetime.now(UTC)
    started = time.monotonic()
    skipped: list[str] = []
    with scratch_dir(work_dir, f"drill-{choice.backup_id}") as scratch:
        host.chown_to_db_user(scratch)
        data_dir = scratch / "data"
        restored, copy = restore_intact_copy(
            choice, data_dir, host=host, bin_dir=bin_dir, work_dir=work_dir, say=skipped.append, sync=True
        )
        manifest = copy.manifest
        instance = start_scratch_instance(data_dir, host=host, bin_dir=bin_dir)
        try:
            accepting = time.monotonic()
            measured = read_validation_queries(instance.conninfo(database), validation)
            validated = time.monotonic()
            # The typed checks of the suite, on the scratch copy (it may create what a check needs there).
            suite = run_suite(
                [check for check in parse_checks(list(validation)) if not isinstance(check, SqlCheck)],
                SuiteTarget(
                    conn=instance.conninfo(database),
                    scratch=True,
                    bin_dir=bin_dir,
                    baseline=manifest.validation_baseline,
                    baseline_note=f"backup {manifest.backup_id} recorded none",
                ),
            )
            suite_s = time.monotonic() - validated
        finally:
            instance.stop(mode="immediate")
    checks = compare_validation(validation, manifest.validation_values, measured)
    backup_age_s = (started_at - manifest.finished_at).total_seconds()
    return {
        "backup_id": manifest.backup_id,
        "storage_target": copy.target,
        "skipped_copies": skipped,
        "backup_finished_at": manifest.finished_at.isoformat(),
        "backup_end_lsn": manifest.end_lsn,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "fetch_s": round(restored.fetch_s, 3),
        "lay_out_s": round(restored.lay_out_s, 3),
        "start_s": round(accepting - started - restored.fetch_s - restored.lay_out_s, 3),
        "validation_s": round(validated - accepting, 3),
        "restore_s": round(validated - started, 3),
        "suite_s": round(suite_s, 3),
        "backup_age_s": round(backup_age_s, 3),
        "stored_bytes": manifest.stored_bytes,
        "database_size_bytes": manifest.database_size_bytes,
        "checks": checks,
        "suite": suite.to_json(),
        "suite_summary": suite.summary() if suite.results else None,
    }


def drill_verdict(result: Mapping[str, Any], rto_s: int, rpo_s: int) -> dict[str, Any]:
    """Judge a drill result against the component's objectives."""
    failed_checks = [c["name"] for c in result["checks"] if not c["passed"]]
    rto_met = result["restore_s"] <= rto_s
    rpo_met = result["backup_age_s"] <= rpo_s
    problems = []
    warnings = []
    if failed_checks:
        problems.append(f"validation failed: {', '.join(failed_checks)}")
    for check in result.get("suite") or []:
        if not check["passed"]:
            problems.append(f"validation suite: {check['problem']}")
    for skipped in result.get("skipped_copies") or []:
        problems.append(
            f"{skipped}; the drill restored from {result.get('storage_target')} instead: repair that copy "
            "(`drflow backups list` shows which targets hold the backup)"
        )
    if not rto_met:
        problems.append(f"restore took {human_duration(result['restore_s'])}, over the RTO of {human_duration(rto_s)}")
    if not rpo_met:
        # Reported, not failed: the drill proves restorability; RPO compliance is judged from all sources.
        warnings.append(
            f"the restored backup was {human_duration(result['backup_age_s'])} old, over the RPO of "
            f"{human_duration(rpo_s)}: "
            "a full backup alone does not meet this RPO; add WAL archiving or more frequent backups"
        )
    return with_verdict(result, rto_s, rpo_s, rto_met, rpo_met, problems, warnings)


def with_verdict(
    result: Mapping[str, Any],
    rto_s: int,
    rpo_s: int,
    rto_met: bool,
    rpo_met: bool,
    problems: list[str],
    warnings: list[str],
) -> dict[str, Any]:
    """A drill result with its verdict, as every drill report stores it: it passed when nothing is a problem."""
    return {
        **result,
        "rto_s": rto_s,
        "rpo_s": rpo_s,
        "rto_met": rto_met,
        "rpo_met": rpo_met,
        "passed": not problems,
        "problems": problems,
        "warnings": warnings,
    }
