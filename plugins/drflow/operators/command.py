"""The `run_command` step of recovery plans: run a reviewed script from include/commands/."""

from __future__ import annotations

from typing import Any

from drflow.operators.step_base import PlanStepOperator
from drflow.spec.plans import CommandAction

DEFAULT_TIMEOUT_S = 600.0
TIMEOUT_MARGIN_S = 2.0


class RunCommandOperator(PlanStepOperator):
    """Run ``include/commands/<script> <args...>`` without a shell; a non-zero exit fails the step.

    The script sees the run in ``DRFLOW_SPEC``, ``DRFLOW_PLAN``, ``DRFLOW_DAG_ID``, ``DRFLOW_RUN_ID`` and
    ``DRFLOW_REASON``. It must be idempotent: Airflow retries the step after a failure.
    """

    ui_color = "#d7bde2"
    step_model = CommandAction

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.actions.command import CommandError, run_reviewed_command

        step = self.definition.spec_step(CommandAction)
        timeout_s = self.step_timeout_s()
        # Finish (and say why) just before Airflow's own execution timeout would kill the task.
        limit = max(timeout_s - TIMEOUT_MARGIN_S, 1.0) if timeout_s else DEFAULT_TIMEOUT_S
        dag_run = context.get("dag_run")
        params = context.get("params") or {}
        env = {
            "DRFLOW_SPEC": self.facts.spec,
            "DRFLOW_PLAN": self.facts.plan,
            "DRFLOW_DAG_ID": str(getattr(dag_run, "dag_id", "") or ""),
            "DRFLOW_RUN_ID": str(getattr(dag_run, "run_id", "") or ""),
            "DRFLOW_REASON": str(params.get("reason") or ""),
        }
        try:
            result = run_reviewed_command(list(step.command), timeout_s=limit, env=env)
        except CommandError as exc:
            if exc.refused:
                raise AirflowFailException(str(exc)) from exc
            raise
        for line in result.stdout.splitlines():
            self.log.info("| %s", line)
        for line in result.stderr.splitlines():
            self.log.warning("| %s", line)
        return {"step": step.name, **result.to_json()}
