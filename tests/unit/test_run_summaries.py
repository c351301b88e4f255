"""What a run says it did: drill and RPO summaries, a plan run's note, durations in one style."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
import structlog.testing
from airflow.sdk.exceptions import AirflowFailException

from drflow.audit.notes import NOTE_LIMIT, fit_note
from drflow.audit.record import build_record
from drflow.audit.run_note import plan_run_note
from drflow.jobs.drill import drill_verdict
from drflow.jobs.summaries import compliance_line, config_drill_summary, drill_summary, rpo_summary
from drflow.operators.report import RpoComplianceOperator
from drflow.units import duration_against
from tests.plan_inputs import plans

RESULT = {
    "backup_id": "20261201T020000Z-daily-full-abc123",
    "restore_s": 12.34,
    "backup_age_s": 7385.0,
    "checks": [{"name": "accounts-count", "passed": True}, {"name": "checksum", "passed": False}],
}


def test_measured_durations_read_in_the_unit_of_their_objective() -> None:
    assert duration_against(738, 300) == "12.3m"  # against an RPO of 5m
    assert duration_against(9000, 3600) == "2.5h"
    assert duration_against(3, 3600) == "3s"  # below one unit: as measured
    assert duration_against(600, 300) == "10m"


def test_a_drill_summary_leads_with_the_verdict_and_marks_each_objective() -> None:
    report = {"drill": "weekly-restore", "component": "user-database", **drill_verdict(RESULT, 1800, 300)}
    text = drill_summary(report)
    lines = text.splitlines()
    assert lines[0] == "FAILED: drill `weekly-restore` of `user-database` restored `20261201T020000Z-daily-full-abc123`"
    assert "- restore 12.3s against an RTO of 30m ✔" in lines
    assert "- backup age 123.1m against an RPO of 5m ✘ (warned, not failed)" in lines
    assert "- checks 1/2 passed; ✘ checksum" in lines
    assert "- **problem**: validation failed: checksum" in lines
    passed = drill_summary({"drill": "d", "component": "c", **drill_verdict({**RESULT, "checks": []}, 1800, 9000)})
    assert passed.startswith("PASSED: ")


def test_a_config_drill_summary_names_the_version_and_the_hash() -> None:
    result = {"version_id": "v1", "target": "s3-primary", "files": 17, "hash_matches": True, "passed": True}
    text = config_drill_summary("api-gateway", {**result, "validation": {"exit": 0}, "skipped_targets": ["t2: gone"]})
    assert text.splitlines() == [
        "PASSED: config drill of `api-gateway` restored version `v1` from `s3-primary`",
        "",
        "- 17 files, hash matches ✔",
        "- validation command passed ✔",
        "- skipped: t2: gone",
    ]
    failed = config_drill_summary("api-gateway", {**result, "hash_matches": False, "passed": False})
    assert failed.startswith("FAILED: ") and "hash differs ✘" in failed


def _compliance(component: str, best: float | None, rpo_s: int, compliant: bool, **extra: Any) -> dict[str, Any]:
    return {
        "component": component,
        "rpo_s": rpo_s,
        "achievable_rpo_s": best,
        "best_source": "backup:s3-primary" if best is not None else None,
        "compliant": compliant,
        "problems": [],
        "notes": [],
        **extra,
    }


def test_out_of_compliance_lines_say_the_objective_and_what_is_achievable_or_missing() -> None:
    late = _compliance("billing", 738.0, 300, False, problems=["s3-primary: WAL archived only up to 12m ago"])
    nothing = _compliance("user-database", None, 300, False)
    fine = _compliance("api-gateway", 2.0, 300, True)
    assert compliance_line(late) == (
        "billing: OUT OF COMPLIANCE: achievable RPO 12.3m (from backup:s3-primary) against an RPO of 5m"
    )
    assert compliance_line(nothing) == (
        "user-database: OUT OF COMPLIANCE: no recovery point at all (no reachable streaming replica, no backup, "
        "no archived WAL) against an RPO of 5m"
    )
    text = rpo_summary({"spec": "shop", "components": [fine, late, nothing]})
    assert text.splitlines()[0] == "OUT OF COMPLIANCE: 2 of 3 components (RPO compliance of `shop`)"
    assert (
        text.splitlines()[-1]
        == "- ✔ api-gateway: compliant: achievable RPO 2s (from backup:s3-primary) against an RPO of 5m"
    )
    assert "— s3-primary: WAL archived only up to 12m ago" in text
    assert "None" not in text


def test_the_rpo_operator_logs_what_is_missing_at_warning(tmp_path: Path) -> None:
    spec = f"""\
version: 1
metadata: {{name: shop, owner: ops}}
regions: [{{name: us-east-1, role: primary}}]
storage: [{{name: t, type: local, path: {tmp_path}, region: us-east-1}}]
components:
  - name: orders
    criticality: low
    rto: 1h
    rpo: 5m
    datastore: {{type: postgres, database: orders, primary: {{conn_id: pg_primary, region: us-east-1}}}}
    backups:
      - {{name: daily, type: full, method: pg_basebackup, schedule: '@daily', targets: [t], retention: {{days: 7}}}}
"""
    [report] = [p for p in plans(spec) if p.kind == "report"]
    operator = RpoComplianceOperator(task_id="compute_rpo_compliance", **report.task("compute_rpo_compliance").params)
    context = {"dag_run": SimpleNamespace(dag_id=report.dag_id, run_id="scheduled__1")}
    # The task logger is structlog's. Captured here whatever an earlier test left configured: importing
    # drflow.cli.main defaults Airflow's logging level to ERROR, which would drop these warnings.
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with structlog.testing.capture_logs() as logged, pytest.raises(AirflowFailException) as failed:
            operator.execute(context)
    finally:
        structlog.configure(**saved)
    assert "orders (RPO 5m, no recovery point at all (no reachable streaming replica" in str(failed.value)
    warnings = [_text(event) for event in logged if event["log_level"] == "warning"]
    warnings = [w for w in warnings if "outside of the Task Runner" not in w]
    assert "orders: OUT OF COMPLIANCE: no recovery point at all" in warnings[0]
    assert warnings[0].endswith("no archived WAL) against an RPO of 5m")
    # No notes connection here: the note is skipped with the reason, the task's verdict stands.
    assert any("the run's note was not written: no Airflow connection 'drflow_airflow_notes'" in w for w in warnings)


def _text(event: MutableMapping[str, Any]) -> str:
    """The message a `log.warning("%s: %s", a, b)` call wrote."""
    args = event.get("positional_args")
    return str(event["event"]) % tuple(args) if args else str(event["event"])


PLAN = {"spec": "shop", "plan": "failover", "scenario": "infrastructure-failure", "rto_s": 1800, "rpo_s": 300}


def _facts(*, answered: bool, state: str = "failed") -> dict[str, Any]:
    hitl: dict[str, Any] = {"task_instance": {"task_id": "declare"}, "response_received": answered}
    if answered:
        hitl.update(chosen_options=["Reject"], responded_by_user={"name": "bob"}, params_input={"comment": "no"})
    return {
        "dag_run": {"dag_run_id": "manual__1", "triggering_user_name": "alice", "conf": {"reason": "drill"}},
        "task_instances": [
            {"task_id": "declare", "state": state, "try_number": 1},
            {"task_id": "fence", "state": "upstream_failed", "try_number": 0},
        ],
        "hitl_details": [hitl],
    }


def test_a_refused_plan_run_says_who_refused_and_why_in_its_note() -> None:
    record = build_record(PLAN, _facts(answered=True))
    assert record["outcome"] == "refused"
    note = plan_run_note(record)
    assert note.splitlines()[0] == "REFUSED: declaration refused by bob (“no”); no step ran, nothing changed"
    assert "- `declare` refused by bob (“no”)" in note and "- triggered by alice: drill" in note


def test_no_answer_in_time_is_a_refusal_in_the_record_and_the_note() -> None:
    results = {"declare": {"declared": False, "timed_out": True, "by": None}}
    record = build_record(PLAN, _facts(answered=False), step_results=results)
    assert record["outcome"] == "refused"
    assert plan_run_note(record).startswith("REFUSED: nobody answered the disaster declaration in time")


def test_an_override_shows_right_after_the_outcome() -> None:
    record = {
        "outcome": "recovered",
        "recovery": {"measured_s": 185.0, "rto_s": 1800, "rto_met": True},
        "override": {"requested": True, "set_by": "alice", "used": [{"step": "promote", "skipped": "the lag gate"}]},
        "approvals": [{"task_id": "declare", "decision": "approved", "by": "bob", "comment": ""}],
        "triggered_by": {"user": "alice"},
        "reason": "us-east-1 is down",
        "run_note": "INC-42",
    }
    lines = plan_run_note(record).splitlines()
    assert lines[0] == "RECOVERED with OVERRIDE: in 3.1m against an RTO of 30m ✔"
    assert lines[1] == "- override set by alice: `promote` (the lag gate) went on without proof"
    assert lines[2] == "- `declare` approved by bob" and lines[-1] == "Note at trigger: INC-42"


def test_a_note_fits_airflows_limit() -> None:
    long = "\n".join(f"- line {n} " + "x" * 60 for n in range(40))
    fitted = fit_note(long)
    assert len(fitted) <= NOTE_LIMIT and fitted.endswith("\n…")
    assert fit_note("short") == "short"
