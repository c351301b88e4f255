"""What a simulation is given: the plan facts, its steps in the order they run, and where results go."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drflow.contracts.base import ContractError, need, optional_str
from drflow.contracts.plan import PlanFacts, StepDefinition

SIMULATE_TASK = "simulate"
"""The simulation DAG's task that runs the simulation; the record task reads its XCom."""


@dataclass(frozen=True)
class SimulationRun:
    """One simulation of a recovery plan against isolated copies (see ``drflow.jobs.simulation``).

    ``steps`` are the plan's steps as its recovery DAG gets them, in an order that respects ``after``;
    ``after`` maps each step to the steps it waits for (``depends_on``, else the previous step).
    """

    exercise: str
    """The exercise's name: the report is ``<stamp>-<exercise>`` under the ``exercise`` reports."""
    dag_id: str
    plan: PlanFacts
    steps: tuple[StepDefinition, ...]
    after: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    storage: Sequence[Mapping[str, Any]] = ()
    """Every storage target of the spec (``model_dump(mode="json")``): each gets the result."""
    work_dir: str | None = None
    """The spec's scratch directory (defaults.work_dir): copies are restored under it."""

    def to_params(self) -> dict[str, Any]:
        return {
            "exercise": self.exercise,
            "dag_id": self.dag_id,
            "plan": self.plan.to_params(),
            "steps": [step.to_params() for step in self.steps],
            "after": {name: list(upstream) for name, upstream in self.after.items()},
            "storage": [dict(t) for t in self.storage],
            "work_dir": self.work_dir,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SimulationRun:
        what = "simulation run"
        steps = tuple(StepDefinition.from_params(s) for s in need(params, "steps", what))
        after = {str(name): tuple(str(u) for u in upstream) for name, upstream in need(params, "after", what).items()}
        names = {step.name for step in steps}
        unknown = sorted({u for upstream in after.values() for u in upstream} - names)
        if set(after) != names or unknown:
            raise ContractError(
                f"{what}: 'after' does not match the steps ({', '.join(sorted(names))}); "
                f"unknown: {', '.join(unknown) or 'none'}; this is a drflow defect: rebuild the DAG with this "
                "drflow version, or report it"
            )
        return cls(
            exercise=str(need(params, "exercise", what)),
            dag_id=str(need(params, "dag_id", what)),
            plan=PlanFacts.from_params(need(params, "plan", what)),
            steps=steps,
            after=after,
            storage=tuple(dict(t) for t in need(params, "storage", what)),
            work_dir=optional_str(params.get("work_dir")),
        )

    def step(self, name: str) -> StepDefinition:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)
