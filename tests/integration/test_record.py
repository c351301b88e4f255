"""The recovery record, built from Airflow REST API answers captured from real runs of Airflow 3.3.2.

data/airflow_api/*.json hold every GET the gatherer made against a live api-server after three real
runs (scheduler, dag-processor, api-server, SimpleAuthManager) of assess >> declare (ApprovalOperator
assigned to bob) >> promote (fails its first try) >> validate >> record, each triggered by alice over
REST: approved by bob, refused by bob, and approved with promote failing for good. The replay answers
only the requests that were recorded, so the gatherer must ask exactly what it asked the live server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from drflow.audit.api import AirflowApi, AuditError
from drflow.audit.gather import gather_run
from drflow.audit.record import build_record
from drflow.operators.record import RecoveryRecordOperator, record_name

DATA = Path(__file__).parent / "data" / "airflow_api"
STEPS_META: dict[str, dict[str, Any]] = {
    "assess": {"type": "automated", "action": "assess", "verification": False},
    "declare": {"type": "approval", "action": None, "verification": False},
    "promote": {"type": "automated", "action": "promote", "verification": False},
    "validate": {"type": "automated", "action": "validate_sql", "verification": True},
}


class ReplayApi:
    """Answers GETs from a capture of a live api-server; anything not captured is an error."""

    def __init__(self, calls: list[dict[str, Any]]) -> None:
        self._answers = {self._key(c["path"], c["params"]): c["response"] for c in calls}
        self.asked: list[str] = []

    @staticmethod
    def _key(path: str, params: dict[str, Any] | None) -> str:
        return path + "?" + json.dumps(params or {}, sort_keys=True)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        key = self._key(path, params)
        self.asked.append(key)
        if key not in self._answers:
            raise AssertionError(f"the gatherer asked for something the live run was not asked: {key}")
        return self._answers[key]


def _capture(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def _record(name: str, *, extra: dict[str, Any] | None = None, **plan_overrides: Any) -> dict[str, Any]:
    capture = _capture(name)
    api = ReplayApi(capture["calls"])
    facts = gather_run(api, capture["dag_id"], capture["run_id"])
    assert len(api.asked) == len(capture["calls"])
    plan = {**capture["plan"], **plan_overrides}
    # "now" is shortly after the run: as when the record task runs.
    now = datetime.fromisoformat(facts["dag_run"]["end_date"].replace("Z", "+00:00"))
    return build_record(plan, facts, steps_meta=STEPS_META, now=now, **(extra or {}))


def test_approved_run_names_both_users_every_try_and_the_recovery_time() -> None:
    record = _record("approved")

    assert record["outcome"] == "recovered"
    assert record["triggered_by"]["user"] == "alice" and record["triggered_by"]["via"] == "rest_api"
    assert record["trigger_event"]["owner"] == "alice"
    assert record["reason"] == "us-east-1 is down (INC-42)" and record["run_note"] == "INC-42"
    [approval] = record["approvals"]
    assert (approval["task_id"], approval["decision"], approval["by"]) == ("declare", "approved", "bob")
    assert approval["assigned"] == ["bob"] and approval["wait_s"] > 0

    steps = {s["task_id"]: s for s in record["steps"]}
    assert list(steps) == ["assess", "declare", "promote", "validate"]  # in the order they ran; no record
    assert steps["declare"]["outcome"] == "approved by bob"
    promote = steps["promote"]
    assert promote["tries"] == 2
    assert [t["state"] for t in promote["try_history"]] == ["failed", "success"]

    recovery = record["recovery"]
    assert recovery["measured_to"] == "end of verification step validate"
    assert recovery["to"] == steps["validate"]["end"]
    start = datetime.fromisoformat(record["run"]["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(steps["validate"]["end"].replace("Z", "+00:00"))
    assert recovery["measured_s"] == pytest.approx((end - start).total_seconds(), abs=0.01)
    assert recovery["rto_met"] is True and record["problems"] == []
    events = {e["event"] for e in record["events"]}
    assert {"update_hitl_detail", "up_for_retry", "success"} <= events


def test_the_record_shows_every_override_with_who_set_it_and_every_unreachable_channel() -> None:
    plain = _record("approved")
    assert plain["override"] == {"requested": False, "set_by": None, "used": []}
    assert plain["notification_failures"] == []

    gate = {
        "step": "gate",
        "overridden": True,
        "passed": False,
        "refusal": "refused: replica-1 lags 900s",
        "override": {"by": "alice", "reason": "us-east-1 is down (INC-42)", "skipped": "the lag gate on replica-1"},
    }
    failures = {"declare": [{"event": "approval-needed", "channel": "oncall-slack", "conn_id": "x", "error": "no"}]}
    record = _record(
        "approved",
        extra={"step_results": {"gate": gate, "promote": {"overridden": False}}, "notification_failures": failures},
    )
    [used] = record["override"]["used"]
    assert used == {
        "step": "gate",
        "by": "alice",
        "reason": "us-east-1 is down (INC-42)",
        "skipped": "the lag gate on replica-1",
        "refusal": "refused: replica-1 lags 900s",
    }
    assert any(
        p.startswith("step gate went on without proof, by the safety override alice set") for p in record["problems"]
    )
    [failure] = record["notification_failures"]
    assert failure["task_id"] == "declare" and failure["channel"] == "oncall-slack"
    assert (
        "notification channel oncall-slack (connection x) could not deliver approval-needed at step declare: no"
        in (record["problems"])
    )


def test_a_cleared_run_is_measured_from_its_first_start_not_from_the_clear() -> None:
    """A clear sets the run's start_date and queued_at to the clear's time; the recovery began before it."""
    capture = _capture("approved")
    facts = gather_run(ReplayApi(capture["calls"]), capture["dag_id"], capture["run_id"])
    first_start = facts["dag_run"]["start_date"]
    [first_promote] = [t for t in facts["tries"]["promote"] if t["try_number"] == 1]
    cleared_at = first_promote["end_date"]  # ops cleared the failed promote then
    facts["dag_run"].update(start_date=cleared_at, queued_at=cleared_at)
    now = datetime.fromisoformat(facts["dag_run"]["end_date"].replace("Z", "+00:00"))

    record = build_record(capture["plan"], facts, steps_meta=STEPS_META, now=now)
    recovery = record["recovery"]
    [assess_try] = facts["tries"]["assess"]  # the first task's first try: within a second of the lost start
    assert recovery["from"] == assess_try["start_date"] != cleared_at
    lost = datetime.fromisoformat(first_start.replace("Z", "+00:00"))
    assert 0 <= (datetime.fromisoformat(recovery["from"].replace("Z", "+00:00")) - lost).total_seconds() < 1
    start = datetime.fromisoformat(recovery["from"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(recovery["to"].replace("Z", "+00:00"))
    assert recovery["measured_s"] == pytest.approx((end - start).total_seconds(), abs=0.01)
    assert record["run"]["start"] == cleared_at  # Airflow's own start of the run, as it says


def test_a_recovery_slower_than_the_rto_is_recorded_as_missed() -> None:
    record = _record("approved", rto_s=5)
    assert record["outcome"] == "recovered"
    assert record["recovery"]["rto_met"] is False
    assert any("over the RTO of 5s" in p for p in record["problems"])


def test_refused_run_records_who_refused_and_changed_nothing() -> None:
    record = _record("refused")
    assert record["outcome"] == "refused"
    [approval] = record["approvals"]
    assert (approval["decision"], approval["by"], approval["chosen"]) == ("refused", "bob", ["Reject"])
    steps = {s["task_id"]: s for s in record["steps"]}
    assert steps["declare"]["outcome"] == "refused by bob"
    assert steps["promote"]["state"] == "skipped" and steps["promote"]["tries"] == 0
    assert record["recovery"]["measured_s"] is None and record["recovery"]["rto_met"] is None
    assert record["recovery"]["measured_to"].startswith("not measured: the disaster declaration was refused")


def test_failed_run_names_the_failed_step_and_is_not_measured() -> None:
    record = _record("failed")
    assert record["outcome"] == "failed"
    assert record["problems"] == ["step promote failed", "step validate not run: an earlier step failed"]
    assert record["recovery"]["measured_s"] is None and record["recovery"]["rto_met"] is None

    # Judged again long after the start, the missed RTO shows.
    capture = _capture("failed")
    facts = gather_run(ReplayApi(capture["calls"]), capture["dag_id"], capture["run_id"])
    late = build_record(capture["plan"], facts, steps_meta=STEPS_META, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert late["recovery"]["rto_met"] is False


CAPTURE_SPEC = """\
version: 1
metadata: {{name: capture, owner: test}}
{defaults}regions: [{{name: us-east-1, role: primary}}]
storage: [{{name: l, type: local, path: {store}, region: us-east-1}}]
components:
  - name: user-database
    criticality: critical
    rto: 30m
    rpo: 5m
    datastore:
      type: postgres
      database: users
      primary: {{conn_id: drflow_pg_primary, region: us-east-1}}
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "@daily", targets: [l],
         retention: {{days: 7}}}}
recovery_plans:
  - name: region-failover
    scenario: infrastructure-failure
    status: approved
    components: [user-database]
    approval: {{approvers: [bob]}}
    steps:
      - {{name: promote, action: promote, component: user-database, node: primary, fence: null}}
"""
"""The spec of the captured runs (dr.capture.plan.region-failover), its store in a test directory."""


def record_params(store: Path, defaults: str = "") -> dict[str, Any]:
    """The record task's params as the plan builder writes them for the captured plan."""
    from tests.plan_inputs import task_params

    spec = CAPTURE_SPEC.format(store=store, defaults=defaults)
    return task_params(spec, ".plan.region-failover", "record")


def test_record_is_written_to_the_target_under_a_stable_name(tmp_path: Path) -> None:
    capture = _capture("approved")
    operator = RecoveryRecordOperator(task_id="record", **record_params(tmp_path))
    dag_run = SimpleNamespace(run_id=capture["run_id"], start_date=datetime(2026, 11, 27, 10, 59, 57, tzinfo=UTC))
    record = _record("approved")
    stored = operator._store(record, dag_run)
    name = record_name("region-failover", dag_run)
    assert stored == {"written": {"l": [f"capture/user-database/reports/recovery/{name}.json"]}, "failed": {}}
    assert name.startswith("20261127T105957Z-region-failover-")
    [key] = stored["written"]["l"]
    assert json.loads((tmp_path / key).read_text())["approvals"][0]["by"] == "bob"
    assert operator._store(record, dag_run) == stored  # a retry replaces, never adds
    assert [p.name for p in (tmp_path / key).parent.iterdir()] == [f"{name}.json"]


def test_api_client_explains_an_unreachable_server() -> None:
    from tests.fixtures.s3 import free_port

    api = AirflowApi(f"http://127.0.0.1:{free_port()}", "reader", "secret", timeout_s=2)
    with pytest.raises(AuditError, match=r"cannot reach the Airflow api-server at http://127\.0\.0\.1:\d+"):
        api.get("/api/v2/dags")


def test_an_unreadable_api_still_leaves_a_partial_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowException

    from tests.fixtures.s3 import free_port

    dead = {"conn_type": "http", "host": f"http://127.0.0.1:{free_port()}", "login": "auditor", "password": "audit-pw"}
    monkeypatch.setenv("AIRFLOW_CONN_DRFLOW_AIRFLOW_API", json.dumps(dead))
    pushed: dict[str, Any] = {}
    context = {
        "dag_run": SimpleNamespace(
            dag_id="dr.capture.plan.region-failover",
            run_id="manual__2026-11-27T10:59:56+00:00",
            conf={"reason": "us-east-1 is down"},
            note=None,
            start_date=datetime(2026, 11, 27, 10, 59, 57, tzinfo=UTC),
            triggering_user_name="alice",
        ),
        "ti": SimpleNamespace(xcom_push=lambda key, value: pushed.update({key: value})),
    }
    operator = RecoveryRecordOperator(task_id="record", **record_params(tmp_path))
    with pytest.raises(AirflowException, match=r"(?s)cannot reach the Airflow api-server.*A partial record"):
        operator.execute(context)
    stored = json.loads((tmp_path / pushed["return_value"]["report_key"]).read_text())
    assert stored["partial"] is True and stored["outcome"] == "unknown"
    assert stored["triggered_by"]["user"] == "alice" and stored["reason"] == "us-east-1 is down"
    assert "the audit trail could not be read: cannot reach" in stored["problems"][0]


def test_the_record_reads_the_api_through_the_audit_connection_the_spec_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`defaults.audit_conn_id` (issue 8: the record read an `audit_conn_id` nothing set)."""
    from airflow.sdk.exceptions import AirflowException

    from tests.fixtures.s3 import free_port

    port = free_port()
    named = {"conn_type": "http", "host": f"http://127.0.0.1:{port}", "login": "auditor", "password": "audit-pw"}
    monkeypatch.setenv("AIRFLOW_CONN_CAPTURE_AIRFLOW_API", json.dumps(named))
    monkeypatch.delenv("AIRFLOW_CONN_DRFLOW_AIRFLOW_API", raising=False)  # the default is not there to fall back on
    params = record_params(tmp_path, defaults="defaults: {audit_conn_id: capture_airflow_api}\n")
    operator = RecoveryRecordOperator(task_id="record", **params)
    context = {
        "dag_run": SimpleNamespace(
            dag_id="dr.capture.plan.region-failover",
            run_id="manual__2026-11-27T10:59:56+00:00",
            conf={"reason": "us-east-1 is down"},
            note=None,
            start_date=datetime(2026, 11, 27, 10, 59, 57, tzinfo=UTC),
            triggering_user_name="alice",
        ),
        "ti": SimpleNamespace(xcom_push=lambda key, value: None),
    }
    with pytest.raises(AirflowException, match=rf"cannot reach the Airflow api-server at http://127\.0\.0\.1:{port}"):
        operator.execute(context)
