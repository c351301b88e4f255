"""The common shape of recovery-plan step operators: ``step=`` and ``plan=`` JSON dicts, JSON results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from airflow.sdk import BaseOperator


class PlanStepOperator(BaseOperator):
    """``step`` is the spec's step as JSON, ``plan`` the plan facts (see drflow.plan.recovery.plan_facts)."""

    template_fields: Sequence[str] = ()

    def __init__(self, *, step: Mapping[str, Any], plan: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = dict(step)
        self.plan = dict(plan)

    def step_timeout_s(self) -> float | None:
        from drflow.spec.types import parse_duration

        value = self.step.get("timeout")
        return parse_duration(value).total_seconds() if value else None


def refuse(why: str, unblock: str) -> NoReturn:
    """Fail the task without retries, in the contract's words."""
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(f"refused: {why}; to proceed: {unblock}")
