"""Exercise DAGs through the builders (spec → plan graph → params), and the results they write."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drflow.audit.incident import incident_markdown
from drflow.audit.record import build_record
from drflow.contracts import ExerciseFacts, PlanFacts, TabletopQuestion, WalkthroughCheck
from drflow.exercises.fullscale import record_findings
from drflow.exercises.tabletop import tabletop_findings
from drflow.operators.exercise_chain import plan_run_id, verify_exercise_start
from drflow.plan.graph import DagPlan
from drflow.store.exercise_results import exercise_result, write_exercise_result
from tests.plan_inputs import plans
from tests.unit.recovery_spec import EXAMPLE

SPEC = "api-marketplace"


def example() -> dict[str, DagPlan]:
    return {p.dag_id: p for p in plans(EXAMPLE.read_text(), str(EXAMPLE))}


def exercise_dag(name: str) -> DagPlan:
    return example()[f"dr.{SPEC}.exercise.{name}"]


def test_every_exercise_but_the_simulation_is_a_dag_of_kind_exercise() -> None:
    dags = [d for d in example().values() if d.kind == "exercise"]
    assert {d.dag_id.rsplit(".", 1)[1] for d in dags} == {
        "region-tabletop",
        "network-outage-tabletop",
        "corruption-tabletop",
        "bad-deploy-tabletop",
        "breach-tabletop",
        "region-walkthrough",
        "corruption-walkthrough",
        "breach-walkthrough",
        "region-full-scale",
    }  # region-simulation is built by the simulation builder
    full = exercise_dag("region-full-scale")
    assert full.schedule == "0 10 15 11 *" and full.paused is True
    assert "type:full-scale" in full.tags and "scenario:primary-region-failure" in full.tags
    assert "component:billing" in full.tags and full.criticality == "critical"
    tabletop = exercise_dag("network-outage-tabletop")
    assert tabletop.schedule == "0 10 15 1,4,7,10 *" and "scenario:network-outage" in tabletop.tags
    assert "# Runbook: recovery plan `region-failover`" in tabletop.doc_md  # the plan's runbook, from its graph


def facts_of(dag: DagPlan) -> ExerciseFacts:
    return ExerciseFacts.from_params(dag.tasks[0].params["exercise"])


def test_the_exercise_facts_carry_the_strictest_objectives_and_every_storage_target() -> None:
    facts = facts_of(exercise_dag("region-tabletop"))
    assert (facts.rto_s, facts.rpo_s) == (15 * 60, 5 * 60)  # api-gateway's RTO, the strictest RPO
    assert [t["name"] for t in facts.targets] == ["s3-primary", "s3-secondary"]
    assert facts.participants == ("oncall", "admin") and facts.who("oncall") == "oncall (incident commander)"
    assert facts.plan_dag_id == f"dr.{SPEC}.plan.region-failover"
    assert ExerciseFacts.from_params(facts.to_params()) == facts


def test_a_tabletop_asks_each_decision_point_of_the_plan_graph_in_order() -> None:
    dag = exercise_dag("breach-tabletop")
    assert [t.task_id for t in dag.tasks] == [
        "brief",
        "decide-declare",
        "decide-contain",
        "decide-go-live",
        "debrief",
        "record_result",
    ]
    questions = {t.task_id: TabletopQuestion.from_params(t.params["question"]) for t in dag.tasks[:-1]}
    assert questions["decide-declare"].options == ("Approve", "Reject")
    assert questions["decide-contain"].options == ("Done", "Failed")
    assert questions["decide-contain"].plan_answer == "Done" and questions["decide-contain"].step == "contain"
    # The steps between two decision points are shown with the next one, as the runbook writes them.
    go_live = questions["decide-go-live"].body
    for step in ("fence-primary", "restore-clean", "validate-restored"):
        assert f"`{step}`" in go_live
    assert "Security review of the clean copy" in go_live and "gaps" in go_live
    assert "assess" in questions["decide-declare"].body
    assert "`record`" in questions["debrief"].body
    assert "An attacker had access" in questions["brief"].body
    result = dag.task("record_result")
    assert result.trigger_rule == "all_done" and result.upstream == ("debrief",)
    assert [q["task_id"] for q in result.params["questions"]] == list(questions)


def test_a_walkthrough_mirrors_the_plan_dag_without_its_record() -> None:
    walk = exercise_dag("region-walkthrough")
    plan = example()[f"dr.{SPEC}.plan.region-failover"]
    checks = {t.task_id: t for t in walk.tasks if t.action == "exercise.walkthrough_check"}
    assert set(checks) == {t.task_id for t in plan.tasks} - {"record"}
    for task in plan.tasks:
        if task.task_id in checks:
            assert checks[task.task_id].upstream == task.upstream
            assert checks[task.task_id].params["step"] == task.params["step"]
            assert checks[task.task_id].trigger_rule == "all_done"
    promote = WalkthroughCheck.from_params(checks["promote-replica"].params["check"])
    assert promote.fenced_before == ("user-database:primary",) and promote.action == "plan.promote"
    assert WalkthroughCheck.from_params(checks["gate-lag"].params["check"]).fenced_before == ()
    report = walk.task("report")
    assert report.upstream == ("tell-customers",) and report.params["steps"][0] == "assess-api-gateway"
    assert PlanFacts.from_params(checks["declare"].params["plan"]).audit_conn_id == "drflow_airflow_api"


def test_a_full_scale_exercise_starts_triggers_and_records() -> None:
    dag = exercise_dag("region-full-scale")
    assert [(t.task_id, t.action, t.upstream) for t in dag.tasks] == [
        ("start", "exercise.fullscale_start", ()),
        ("trigger_plan", "exercise.fullscale_trigger", ("start",)),
        ("record_result", "exercise.fullscale_result", ("trigger_plan",)),
    ]
    assert PlanFacts.from_params(dag.task("record_result").params["plan"]).plan == "region-failover"


def answer(at: datetime, by: str, *chosen: str, **fields: Any) -> dict[str, Any]:
    return {"chosen": list(chosen), "by": by, "at": at.isoformat(), "timed_out": False, **fields}


def test_tabletop_findings_time_each_decision_and_fail_on_gaps_and_off_plan_answers() -> None:
    dag = exercise_dag("corruption-tabletop")
    questions = [TabletopQuestion.from_params(q) for q in dag.task("record_result").params["questions"]]
    assert [q.task_id for q in questions] == ["brief", "decide-declare", "decide-repoint-app", "debrief"]
    t0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
    answers: dict[str, Any] = {
        "brief": answer(t0, "oncall", "Start"),
        "decide-declare": answer(t0 + timedelta(seconds=90), "admin", "Reject", answer="not sure", gaps=""),
        "decide-repoint-app": answer(t0 + timedelta(seconds=200), "oncall", "Done", gaps="- no app config access\n"),
        "debrief": None,  # nobody answered in time
    }
    findings, session = tabletop_findings(questions, answers)
    by = {f["question"]: f for f in findings}
    assert by["brief"]["ok"] and by["brief"]["decision_s"] is None
    assert not by["decide-declare"]["ok"] and "the plan expects Approve" in by["decide-declare"]["detail"]
    assert by["decide-declare"]["decision_s"] == 90.0 and by["decide-declare"]["step"] == "declare"
    assert by["decide-repoint-app"]["gaps"] == ["no app config access"] and not by["decide-repoint-app"]["ok"]
    assert not by["debrief"]["ok"] and "no answer" in by["debrief"]["detail"]
    assert session == {"session_started_at": t0.isoformat(), "session_s": 200.0}


def result(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "spec": "shop",
        "exercise": "walk",
        "type": "walkthrough",
        "plan": "failover",
        "scenario": "primary-region-failure",
        "components": ["orders", "users"],
        "dag_id": "dr.shop.exercise.walk",
        "run_id": "manual__1",
        "started_at": datetime(2026, 12, 1, 10, tzinfo=UTC),
        "finished_at": datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC),
        "participants": [],
        "outcome": "passed",
        "rto_s": None,
        "rpo_s": 1.5,
        "objectives": (1800, 300),
        "findings": [{"step": "gate", "ok": True, "detail": "fine", "action": "gate_lag"}],
    }
    return exercise_result(**{**fields, **overrides})


def test_the_result_has_exactly_the_shared_keys() -> None:
    data = result()
    assert (
        list(data)[:19]
        == [
            "kind",
            "format_version",
            "spec",
            "exercise",
            "type",
            "plan",
            "scenario",
            "components",
            "dag_id",
            "run_id",
            "started_at",
            "finished_at",
            "duration_s",
            "participants",
            "outcome",
            "measured",
            "objectives",
            "findings",
        ][:19]
    )
    assert data["kind"] == "exercise" and data["format_version"] == 1 and data["duration_s"] == 30.0
    assert data["started_at"] == "2026-12-01T10:00:00+00:00"
    assert data["measured"] == {"rto_s": None, "rpo_s": 1.5} and data["objectives"] == {"rto_s": 1800, "rpo_s": 300}
    assert data["findings"] == [{"step": "gate", "ok": True, "detail": "fine", "action": "gate_lag"}]
    with pytest.raises(ValueError, match="'ok' is not one of passed, failed"):
        result(outcome="ok")


def test_the_result_goes_into_every_target_each_on_its_own(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a store directory should be")
    targets = [
        {"name": "a", "type": "local", "path": str(tmp_path / "a")},
        {"name": "broken", "type": "local", "path": str(blocked)},
        {"name": "b", "type": "local", "path": str(tmp_path / "b")},
    ]
    outcome = write_exercise_result(result(), targets)
    assert set(outcome["failed"]) == {"broken"}
    assert {name: len(keys) for name, keys in outcome["written"].items()} == {"a": 2, "b": 2}
    assert outcome["written"]["a"][0].endswith("shop/orders/reports/exercise/20261201T100000Z-walk.json")
    again = write_exercise_result(result(finished_at=datetime(2026, 12, 1, 11, tzinfo=UTC)), targets[:1])
    assert again["written"]["a"] == outcome["written"]["a"]  # a retry of the same run replaces, never adds


def test_a_full_scale_result_measures_rto_and_rpo_from_the_plan_runs_record() -> None:
    facts = facts_of(exercise_dag("region-full-scale"))
    plan = next(t.params["plan"] for t in example()[f"dr.{SPEC}.plan.region-failover"].tasks if "plan" in t.params)
    start = "2026-12-01T10:00:00+00:00"
    tis = [
        {
            "task_id": "declare",
            "state": "success",
            "try_number": 1,
            "start_date": start,
            "end_date": "2026-12-01T10:02:00+00:00",
        },
        {
            "task_id": "validate-new-primary",
            "state": "success",
            "try_number": 1,
            "start_date": "2026-12-01T10:02:00+00:00",
            "end_date": "2026-12-01T10:03:00+00:00",
        },
    ]
    mark = {"name": "region-full-scale", "type": "full-scale", "started_by": "oncall", "run_id": "r", "dag_id": "d"}
    gathered = {
        "dag_run": {
            "dag_run_id": "exercise__region-full-scale__r",
            "conf": {"reason": "EXERCISE", "exercise": mark},
            "triggered_by": "operator",
            "triggering_user_name": None,
            "start_date": start,
            "state": "success",
        },
        "task_instances": tis,
    }
    steps_meta = {"validate-new-primary": {"verification": True}}
    lag = {"guards": {"lag": {"lag_s": 0.5, "lag_bytes": 10}}}
    record = build_record(plan, gathered, steps_meta=steps_meta, step_results={"gate-lag": lag})
    assert record["exercise"] == mark and record["triggered_by"]["user"] == "oncall"
    outcome, rto_s, rpo_s, findings = record_findings(record, facts)
    assert (outcome, rto_s, rpo_s) == ("passed", 180.0, 0.5)
    assert {f["step"] for f in findings} >= {"plan-run", "rto", "rpo", "declare"}
    report = incident_markdown(record)
    assert "**EXERCISE, not a real incident**" in report and "started by oncall" in report
    slow = {**record, "recovery": {**record["recovery"], "measured_s": 1000.0}}
    assert record_findings(slow, facts)[0] == "failed"  # over the 15m RTO


class Api:
    def __init__(self, detail: dict[str, Any]) -> None:
        self.detail = detail
        self.paths: list[str] = []

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        self.paths.append(path)
        return self.detail


class Run:
    def __init__(self, run_id: str, conf: dict[str, Any]) -> None:
        self.run_id, self.conf, self.run_type = run_id, conf, "operator_triggered"


def test_four_eyes_through_an_exercise_is_proven_from_its_start_answer() -> None:
    parent = "scheduled__2026-11-15T10:00:00+00:00"
    child = plan_run_id("region-full-scale", parent)
    assert child == "exercise__region-full-scale__scheduled__2026-11-15T10:00:00+00:00"
    assert plan_run_id("x", "manual run/1") == "exercise__x__manual-run-1"
    mark = {"name": "region-full-scale", "dag_id": f"dr.{SPEC}.exercise.region-full-scale", "run_id": parent}
    approved = {"chosen_options": ["Approve"], "responded_by_user": {"id": "oncall", "name": "oncall"}}
    api = Api(approved)
    assert verify_exercise_start(api, Run(child, {"exercise": {**mark, "started_by": "oncall"}}), SPEC) == "oncall"
    quoted = "scheduled__2026-11-15T10%3A00%3A00%2B00%3A00"
    assert api.paths == [f"/api/v2/dags/{mark['dag_id']}/dagRuns/{quoted}/taskInstances/start/-1/hitlDetails"]
    refusals = [
        (Run(child, {"exercise": {**mark, "started_by": "admin"}}), approved, "was not approved by 'admin'"),
        (
            Run(child, {"exercise": {**mark, "started_by": "oncall"}}),
            {**approved, "chosen_options": ["Reject"]},
            "Reject",
        ),  # fmt: skip
        (Run("manual__1", {"exercise": {**mark, "started_by": "oncall"}}), approved, "is not the one exercise run"),
        (Run(child, {"exercise": {**mark, "dag_id": "dr.other.exercise.x"}}), approved, "no exercise DAG of spec"),
        (Run(child, {}), approved, "not marked as an exercise"),
    ]
    for run, detail, why in refusals:
        with pytest.raises(ValueError, match=why):
            verify_exercise_start(Api(detail), run, SPEC)


def first_run(dag: Any) -> datetime:
    """When the scheduler would start the DAG's first run (the core timetable the DAG processor stores)."""
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = decode_timetable(encode_timetable(dag.timetable))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(earliest=None, latest=None, catchup=False)
    )
    assert info is not None
    return info.run_after


def test_an_exercise_never_starts_for_a_slot_that_passed_before_it_appeared() -> None:
    """Airflow runs a slot missed by under a tenth of the interval; an exercise waits for its next slot."""
    from drflow.render.airflow import render_dag

    just_missed = datetime.now(UTC) - timedelta(minutes=2)
    cron = f"{just_missed.minute} {just_missed.hour} * * *"
    for name in ("region-tabletop", "region-walkthrough", "region-simulation", "region-full-scale"):
        plan = exercise_dag(name)
        dag = render_dag(replace(plan, schedule=cron))
        assert first_run(dag) > datetime.now(UTC) + timedelta(hours=23), name
    # A backup DAG keeps Airflow's rule: a slot missed two minutes ago still runs (protection starts at once).
    backup = next(p for p in example().values() if p.kind == "backup" and p.schedule)
    assert first_run(render_dag(replace(backup, schedule=cron))) < datetime.now(UTC)
