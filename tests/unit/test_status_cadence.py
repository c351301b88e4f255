"""Status cadence: the spec's `status_every`, the watcher task the plan builder adds, the update's text."""

from __future__ import annotations

from pathlib import Path

from drflow.operators.status_watch import status_text
from drflow.plan.recovery import STATUS, plan_facts, recovery_plan
from tests.unit.recovery_spec import SPEC, load, messages

CADENCE = SPEC.replace("    notify: [ops]\n", "    notify: [ops]\n    status_every: 15m\n")


def test_a_plan_with_status_every_gets_a_watcher_beside_its_steps(tmp_path: Path) -> None:
    assert CADENCE != SPEC
    spec = load(CADENCE, tmp_path).spec
    dag = recovery_plan(spec, spec.recovery_plans[0], "shop.yaml")
    [watch] = [task for task in dag.tasks if task.task_id == STATUS]
    assert (watch.action, watch.params["every_s"], watch.upstream, watch.retries) == ("plan.status", 900, (), 3)
    assert not any(STATUS in task.upstream for task in dag.tasks)  # nothing waits for it
    plain = load(SPEC, tmp_path).spec
    assert STATUS not in {task.task_id for task in recovery_plan(plain, plain.recovery_plans[0], "s.yaml").tasks}


def test_status_every_without_channels_is_refused_at_its_line(tmp_path: Path) -> None:
    found = messages(CADENCE.replace("    notify: [ops]\n", ""), tmp_path)
    [refused] = [m for m in found if "status_every" in m or "status updates" in m]
    assert "has no channel to send them to" in refused and "'notify:'" in refused
    assert ":" in refused.split(" ", 1)[0]  # file:line:col first


def test_the_update_says_what_is_done_what_waits_on_whom_and_when_it_should_end(tmp_path: Path) -> None:
    spec = load(CADENCE, tmp_path).spec
    facts = plan_facts(spec, spec.recovery_plans[0])
    states = {"assess-orders": "success", "declare": "success", "gate": "awaiting_input", "fence": None}
    text = status_text(facts, 600, states, {"gate": ["bob", "carol"]}, {"gate": 120.0, "fence": 60.0})
    assert "10m elapsed of its RTO" in text and f"({round(100 * 600 / facts.rto_s)}%)" in text
    assert "Done: assess-orders, declare (2 of 4 steps)." in text
    assert "Now: gate (waiting on bob, carol)." in text
    assert "Expected completion: in about 3m, at 13m of" in text
    unknown = status_text(facts, 600, states, {}, {"gate": 120.0})
    assert "unknown (no earlier successful run of fence)" in unknown
    finished = status_text(facts, 700, {"declare": "success", "gate": "failed"}, {}, {})
    assert "Every step has finished." in finished
