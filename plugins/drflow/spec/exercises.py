"""The exercise program of a spec (`exercises:`): the seed's four test types run against its scenarios.

An exercise names a recovery plan and how to rehearse it: a *tabletop* (people answer the plan's
decision points), a *walkthrough* (every step checks its preconditions, nothing changes), a *simulation*
(the plan on isolated copies) or a *full-scale* test (the real plan, behind its declaration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from drflow.spec.types import NAME_PATTERN, PositiveDuration, Schedule, airflow_schedule

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
UserName = Annotated[str, StringConstraints(min_length=1, max_length=250)]
ExerciseType = Literal["tabletop", "walkthrough", "simulation", "full-scale"]
ExerciseScenario = Literal[
    "primary-region-failure", "database-corruption", "security-breach", "application-failure", "network-outage"
]
EXERCISE_TYPES: tuple[ExerciseType, ...] = ("tabletop", "walkthrough", "simulation", "full-scale")
EXERCISE_SCENARIOS: tuple[ExerciseScenario, ...] = (
    "primary-region-failure",
    "database-corruption",
    "security-breach",
    "application-failure",
    "network-outage",
)
# The seed's test schedule as cron (UTC, 10:00 on the 15th), staggered so two types never fall on one day:
# tabletop quarterly, walkthrough twice a year, simulation and full-scale yearly.
DEFAULT_SCHEDULES: dict[str, str] = {
    "tabletop": "0 10 15 1,4,7,10 *",
    "walkthrough": "0 10 15 3,9 *",
    "simulation": "0 10 15 5 *",
    "full-scale": "0 10 15 11 *",
}
# A plan's scenario (the seed's disaster classes) → the test scenario it rehearses by default.
PLAN_SCENARIO_DEFAULTS: dict[str, ExerciseScenario] = {
    "infrastructure-failure": "primary-region-failure",
    "natural-disaster": "primary-region-failure",
    "data-corruption": "database-corruption",
    "security-incident": "security-breach",
    "human-error": "application-failure",
}
NEEDS_PARTICIPANTS: frozenset[str] = frozenset({"tabletop", "full-scale"})
DEFAULT_ANSWER_TIMEOUT = timedelta(days=1)


@dataclass(frozen=True)
class ExerciseSchedule:
    """An exercise of the spec's program as completion counts it: its name, its cron schedule, the components its
    plan affects (empty: all of them) and whether it is paused (a paused exercise is not due)."""

    name: str
    schedule: str
    components: tuple[str, ...] = ()
    paused: bool = False

    def covers(self, component: str) -> bool:
        return not self.components or component in self.components


class ExerciseModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Participant(ExerciseModel):
    """A person taking part, with the role they play in the exercise."""

    user: UserName = Field(description="Airflow user name: who answers the exercise's questions.")
    role: str = Field("", description="The role they play, e.g. incident commander, database owner.")


class Exercise(ExerciseModel):
    """One rehearsal of a recovery plan, on a schedule, whose result lands in every storage target."""

    name: Name = Field(description="Exercise name, unique in the spec; the DAG id is dr.<spec>.exercise.<name>.")
    type: ExerciseType = Field(
        description="tabletop: the participants answer the plan's decision points in Airflow; walkthrough: every "
        "step checks its preconditions and changes nothing; simulation: the plan against isolated copies; "
        "full-scale: the real plan, behind its disaster declaration."
    )
    plan: Name = Field(description="The recovery plan rehearsed (a name under recovery_plans).")
    scenario: ExerciseScenario | None = Field(
        None,
        description="The test scenario: primary-region-failure, database-corruption, security-breach, "
        "application-failure or network-outage (default: the one the plan's scenario maps to).",
    )
    description: str = Field("", description="What the exercise sets out to show, for the participants.")
    schedule: Schedule | None = Field(
        None,
        description="When it runs (default per type, the seed's: tabletop quarterly '0 10 15 1,4,7,10 *', "
        "walkthrough twice a year '0 10 15 3,9 *', simulation '0 10 15 5 *' and full-scale '0 10 15 11 *' yearly).",
    )
    participants: list[UserName | Participant] = Field(
        [],
        description="Who takes part: Airflow user names, or {user, role}; required for tabletop and full-scale "
        "(they answer its questions).",
    )
    timeout: PositiveDuration | None = Field(
        None, description="How long each question waits for an answer (tabletop; full-scale's start). Default 1d."
    )
    paused: bool | None = Field(
        None, description="Paused when Airflow first sees it (default: Airflow's own; full-scale: paused)."
    )

    @property
    def users(self) -> list[str]:
        """The participants' Airflow user names, in spec order, each once."""
        return list(dict.fromkeys(p if isinstance(p, str) else p.user for p in self.participants))

    @property
    def roles(self) -> dict[str, str]:
        return {p.user: p.role for p in self.participants if isinstance(p, Participant) and p.role}

    @property
    def effective_schedule(self) -> str:
        return self.schedule or DEFAULT_SCHEDULES[self.type]

    @property
    def answer_timeout(self) -> timedelta:
        return self.timeout or DEFAULT_ANSWER_TIMEOUT

    def effective_scenario(self, plan_scenario: str) -> ExerciseScenario:
        return self.scenario or PLAN_SCENARIO_DEFAULTS[plan_scenario]

    def scheduled(self, components: Sequence[str]) -> ExerciseSchedule:
        """Its entry in the program: the cron of its schedule (the type's default when none is written) and
        ``components``, those its plan affects."""
        cron = airflow_schedule(self.effective_schedule)
        return ExerciseSchedule(self.name, cron, tuple(components), bool(self.paused))

    @property
    def effective_paused(self) -> bool | None:
        if self.paused is None and self.type == "full-scale":
            return True
        return self.paused
