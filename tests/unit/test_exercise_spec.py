"""The spec's `exercises:`: defaults from the seed, and every mistake at its file:line:col with what would be right."""

from __future__ import annotations

from pathlib import Path

import pytest

from drflow.plan.metrics import metrics_run
from drflow.spec.exercises import DEFAULT_SCHEDULES, ExerciseSchedule
from drflow.spec.schema import json_schema
from tests.unit.recovery_spec import EXAMPLE, SPEC, diagnostics, load

DRAFT = """\
  - name: drafted
    scenario: security-incident
    status: draft
    components: [orders]
    approval: {approvers: [bob, carol]}
    steps: [{name: fence, action: fence, component: orders}]
"""


def with_exercises(text: str, *, draft: bool = False) -> str:
    return SPEC + (DRAFT if draft else "") + "exercises:\n" + text


def test_the_example_spec_rehearses_every_type_and_the_seeds_scenarios(tmp_path: Path) -> None:
    spec = load(EXAMPLE.read_text(), tmp_path).spec
    assert {e.type for e in spec.exercises} == {"tabletop", "walkthrough", "simulation", "full-scale"}
    scenarios = {e.effective_scenario(spec.recovery_plan(e.plan).scenario) for e in spec.exercises}
    assert scenarios == {
        "primary-region-failure",
        "database-corruption",
        "security-breach",
        "application-failure",
        "network-outage",
    }


def test_defaults_come_from_the_seed_and_the_plan(tmp_path: Path) -> None:
    spec = load(
        with_exercises(
            """
  - {name: t, type: tabletop, plan: failover, participants: [bob, {user: carol, role: commander}]}
  - {name: w, type: walkthrough, plan: failover, scenario: network-outage, schedule: "@monthly"}
  - {name: f, type: full-scale, plan: failover, participants: [bob], timeout: 2h}
"""
        ),
        tmp_path,
    ).spec
    tabletop, walkthrough, full = spec.exercises
    assert tabletop.effective_schedule == DEFAULT_SCHEDULES["tabletop"] == "0 10 15 1,4,7,10 *"  # quarterly
    assert DEFAULT_SCHEDULES["walkthrough"] == "0 10 15 3,9 *"  # twice a year
    assert walkthrough.effective_schedule == "@monthly"
    assert tabletop.effective_scenario("infrastructure-failure") == "primary-region-failure"
    assert walkthrough.effective_scenario("infrastructure-failure") == "network-outage"
    assert tabletop.users == ["bob", "carol"] and tabletop.roles == {"carol": "commander"}
    assert (tabletop.effective_paused, full.effective_paused) == (None, True)  # a real failover starts paused
    assert full.answer_timeout.total_seconds() == 7200 and tabletop.answer_timeout.days == 1


@pytest.mark.parametrize(
    ("exercises", "draft", "line", "token", "message", "hint"),
    [
        (
            "  - {name: t, type: tabletop, plan: failovr, participants: [bob]}\n",
            False,
            1,
            "failovr",
            "exercise 't' rehearses recovery plan 'failovr', which the spec does not have",
            "did you mean 'failover'?",
        ),
        (
            "  - {name: t, type: tabletop, plan: failover}\n",
            False,
            1,
            "tabletop",
            "tabletop exercise 't' has no participants, but someone answers its questions",
            "list the Airflow users taking part under 'participants:'",
        ),
        (
            "  - {name: f, type: full-scale, plan: drafted, participants: [bob]}\n",
            True,
            1,
            "drafted",
            "full-scale exercise 'f' runs plan 'drafted', which is draft and cannot be triggered",
            "set its status: approved, or rehearse it with a tabletop or walkthrough",
        ),
        (
            "  - {name: w, type: walkthrough, plan: failover}\n  - {name: w, type: walkthrough, plan: failover}\n",
            False,
            2,
            "w,",
            "exercise name 'w' is used twice",
            "the first is on line",
        ),
        (
            "  - {name: t, type: tabletop, plan: failover, participants: [bob, {user: bob, role: x}]}\n",
            False,
            1,
            "{user: bob",
            "participant 'bob' is listed twice in exercise 't'",
            "list each person once",
        ),
        (
            "  - {name: t, type: drill, plan: failover}\n",
            False,
            1,
            "drill",
            "'type' cannot be 'drill'",
            "use one of 'tabletop', 'walkthrough', 'simulation', 'full-scale'",
        ),
        (
            "  - {name: t, type: walkthrough, plan: failover, scenario: flood}\n",
            False,
            1,
            "flood",
            "'scenario' cannot be 'flood'",
            "'primary-region-failure', 'database-corruption', 'security-breach'",
        ),
    ],
)
def test_mistakes_are_reported_where_they_are_written(
    tmp_path: Path, exercises: str, draft: bool, line: int, token: str, message: str, hint: str
) -> None:
    text = with_exercises(exercises, draft=draft)
    first = len(text.splitlines()) - len(exercises.splitlines())  # line of the first exercise, 0-based
    found = [d for d in diagnostics(text, tmp_path) if d.is_error and d.path.startswith("exercises")]
    [diagnostic] = [d for d in found if message in d.message]
    col = exercises.splitlines()[line - 1].index(token) + 1  # where the wrong value is written
    assert (diagnostic.line - first, diagnostic.col) == (line, col), str(diagnostic)
    assert hint in diagnostic.hint or hint in diagnostic.message
    assert str(diagnostic).startswith(f"{tmp_path / 'shop.yaml'}:{diagnostic.line}:{diagnostic.col}: exercises[")


def test_the_json_schema_describes_exercises() -> None:
    schema = json_schema()
    exercise = schema["$defs"]["Exercise"]
    assert set(exercise["properties"]) >= {"name", "type", "plan", "scenario", "schedule", "participants", "paused"}
    assert exercise["properties"]["type"]["enum"] == ["tabletop", "walkthrough", "simulation", "full-scale"]
    assert "exercises" in schema["properties"]


def test_the_program_is_each_exercise_s_cron_and_components_and_a_paused_one_is_not_due(tmp_path: Path) -> None:
    spec = load(
        with_exercises(
            """
  - {name: t, type: tabletop, plan: failover, participants: [bob]}
  - {name: w, type: walkthrough, plan: failover, schedule: "@monthly", paused: true}
"""
        ),
        tmp_path,
    ).spec
    components = tuple(spec.recovery_plan("failover").components)
    assert spec.exercise_schedules() == (
        ExerciseSchedule("t", DEFAULT_SCHEDULES["tabletop"], components),
        ExerciseSchedule("w", "@monthly", components, paused=True),
    )
    assert metrics_run(spec).exercises == (ExerciseSchedule("t", DEFAULT_SCHEDULES["tabletop"], components),)
