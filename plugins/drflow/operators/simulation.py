"""Simulation operators: run a recovery plan against isolated copies; write the result into every target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts.simulation import SIMULATE_TASK, SimulationRun


class SimulationOperator(BaseOperator):
    """Copies, the plan's steps on them, cleanup (always); the exercise result in XCom."""

    ui_color = "#d2b4de"

    def __init__(self, *, simulation: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.simulation = SimulationRun.from_params(simulation)

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.hosts import LocalHost
        from drflow.jobs.simulation import run_simulation

        result = run_simulation(self.simulation, run_id=context["dag_run"].run_id, host=LocalHost(), say=self.log.info)
        measured = result["measured"]
        self.log.info(
            "simulation of %s %s: recovery time %s s (RTO %d s), data loss %s s (RPO %d s)",
            result["plan"],
            result["outcome"].upper(),
            measured["rto_s"],
            result["objectives"]["rto_s"],
            measured["rpo_s"],
            result["objectives"]["rpo_s"],
        )
        return result


class ExerciseRecordOperator(BaseOperator):
    """Write the simulation's result into every storage target; fail when it failed (after writing it)."""

    ui_color = "#f9e79f"

    def __init__(self, *, simulation: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.simulation = SimulationRun.from_params(simulation)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.operators.common import upstream_result
        from drflow.store.exercise_results import write_exercise_result, written_summary

        result = upstream_result(context, SIMULATE_TASK)
        stored = write_exercise_result(result, self.simulation.storage)
        self.log.info("exercise result: %s", written_summary(stored))
        if stored["failed"]:
            # A retry writes the same report again (same name), so the targets that took it keep one copy.
            raise RuntimeError(
                f"the exercise result could not be written into every storage target: {written_summary(stored)}; "
                "fix the target and clear this task"
            )
        if result["outcome"] != "passed":
            failed = [f"{f['step']}: {f['detail']}" for f in result["findings"] if not f["ok"]]
            raise AirflowFailException("the simulation failed:\n" + "\n".join(failed))
        return {"outcome": result["outcome"], "measured": result["measured"], "reports": stored["written"]}
