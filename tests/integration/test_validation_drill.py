"""Validation suites in a restore drill and in a plan's `validate` step: a real backup records the baseline, a
real restore is checked against it, and the drill's verdict names the failed check and by how much."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drflow.contracts import BackupRun, DrillReportRun, PlanFacts, RestoreDrillRun, StepDefinition
from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.hosts import Host
from drflow.jobs.backup import FullBackupRequest, take_full_backup
from drflow.jobs.drill import drill_verdict, run_restore_drill
from drflow.jobs.restore import find_copies
from drflow.jobs.validation import run_suite
from drflow.operators.policy import request_fields
from drflow.operators.restore_step import restore_component, restore_root
from drflow.operators.validation import suite_target
from drflow.spec.plans import ValidateAction
from drflow.store.factory import target_catalogs
from tests.fixtures.pg import create_database
from tests.plan_inputs import postgres_component, spec_head, task_params

pytestmark = pytest.mark.slow

SPEC = "suite-test"
DATA = (
    "create table accounts (id bigint primary key, email text not null)",
    "insert into accounts select n, 'user' || n || '@example.com' from generate_series(1, 2000) n",
    "create table invoices (id bigint primary key, account_id bigint not null)",
    "insert into invoices select n, 1 + n % 2000 from generate_series(1, 500) n",
    "insert into invoices values (501, 7777), (502, 8888), (503, 9999)",  # written while the key was off
    "alter table invoices add constraint invoices_account_fk foreign key (account_id) references accounts not valid",
)
DRILL_SUITE = [
    {"name": "accounts-count", "query": "select count(*) from accounts"},
    {"name": "intact", "type": "checksum", "tables": ["accounts", "invoices"]},
    {"name": "complete", "type": "row-count", "tables": ["accounts", "invoices"]},
    {"name": "indexes", "type": "amcheck"},
    {"name": "consistent", "type": "constraints"},
]
PLAN_SUITE = [
    {"name": "intact", "type": "checksum", "tables": ["accounts"]},
    {"name": "complete", "type": "row-count", "tables": ["invoices"], "tolerance": "0.5%"},
    {"name": "accounts-present", "query": "select count(*) > 0 from accounts", "expected": True},
]


def spec_text(target: dict[str, Any], bin_dir: Path) -> str:
    drills = [{"name": "weekly", "type": "restore", "schedule": "@weekly", "validation": DRILL_SUITE}]
    steps = [
        {"name": "restore-clean", "action": "restore", "component": "shop"},
        {"name": "check-clean", "action": "validate", "component": "shop", "node": "restored", "suite": PLAN_SUITE},
    ]
    plan = {
        "name": "clean-copy",
        "scenario": "security-incident",
        "status": "approved",
        "components": ["shop"],
        "approval": {"approvers": ["alice", "bob"]},
        "steps": steps,
    }
    return json.dumps(
        {
            **spec_head(SPEC, [target]),
            "components": [postgres_component("shop", "shop", bin_dir, [target], drills=drills)],
            "recovery_plans": [plan],
        }
    )


def test_a_drill_and_a_plan_step_check_the_restored_copy_against_the_backup(
    pg_primary: LocalCluster, local_target: dict[str, Any], pg_host: Host
) -> None:
    create_database(pg_primary, "shop", *DATA)
    text = spec_text(local_target, pg_primary.bin_dir)
    run = BackupRun.from_params(task_params(text, ".backup.daily-full", "take_backup")["run"])
    backup_id = "20260101T0000Z-daily-full-abcdef"
    request = FullBackupRequest(
        **request_fields(run, backup_id), conn=pg_primary.conninfo("shop"), bin_dir=pg_primary.bin_dir
    )
    manifest = take_full_backup(request)
    baseline = manifest.validation_baseline
    assert baseline is not None and baseline.row_counts == {"public.accounts": 2000, "public.invoices": 503}
    assert set(baseline.checksums) == {"public.accounts", "public.invoices"}  # the plan's tables are the drill's

    drill = RestoreDrillRun.from_params(task_params(text, ".drill.weekly", "restore_and_validate")["drill"])
    catalogs = target_catalogs(SPEC, [drill.target])
    result = run_restore_drill(
        find_copies(catalogs, "shop", backup_id),
        database=drill.database,
        validation=drill.validation,
        host=pg_host,
        bin_dir=Path(drill.bin_dir),
    )
    judged = DrillReportRun.from_params(task_params(text, ".drill.weekly", "record_report")["drill"]).facts
    verdict = drill_verdict(result, rto_s=judged.rto_s, rpo_s=judged.rpo_s)
    suite = {check["name"]: check for check in result["suite"]}
    assert [name for name, check in suite.items() if check["passed"]] == ["intact", "complete", "indexes"]
    assert suite["indexes"]["detail"]["indexes"] >= 2
    assert result["suite_summary"] == "3/4 passed (data 3/4)" and result["checks"][0]["passed"]
    assert not verdict["passed"]
    assert verdict["problems"] == [
        "validation suite: consistent (constraints): foreign key invoices_account_fk on public.invoices "
        "(NOT VALID): expected at most 0 violating rows, got 3 (3 too many)"
    ]
    with psycopg.connect(**pg_primary.conninfo("shop").libpq_kwargs(), autocommit=True) as db:
        row = db.execute("select count(*) from pg_extension where extname = 'amcheck'").fetchone()
    assert row == (0,)  # created on the scratch copy only

    step = task_params(text, ".plan.clean-copy", "check-clean")
    restore = task_params(text, ".plan.clean-copy", "restore-clean")
    assert step["step"]["restored_by"] == "restore-clean"
    facts = PlanFacts.from_params(step["plan"])
    key = "validation-suite-test"
    try:
        restored = restore_component(
            step=StepDefinition.from_params(restore["step"]), plan=facts, params={}, run_key=key
        )
        server = restored["restored"]
        conn = PgConnInfo(host=server["host"], port=int(server["port"]), user=server["user"], dbname="shop")
        typed = StepDefinition.from_params(step["step"]).spec_step(ValidateAction)
        target = suite_target(typed, facts, conn, restored)
        assert target.scratch and target.baseline == baseline
        checked = run_suite(typed.suite, target)
        assert checked.passed, checked.problems()
        with psycopg.connect(**conn.libpq_kwargs(), autocommit=True) as db:
            db.execute("delete from invoices where id > 490")  # 13 of 503 rows gone: over 0.5%
        [gone] = [r for r in run_suite(typed.suite, target).results if not r.passed]
        assert gone.problem() == (
            "complete (row-count): public.invoices: expected 503 ± 0.5% (501..505), got 490 (-13 rows, -2.6%, "
            "10.485 beyond the tolerance)"
        )
    finally:
        root = restore_root(None, SPEC, "shop", key)
        pg_host.run(
            [str(pg_primary.bin_dir / "pg_ctl"), "stop", "-D", str(root / "data"), "-m", "immediate"],
            check=False,
            as_db_user=True,
        )
        shutil.rmtree(root, ignore_errors=True)
