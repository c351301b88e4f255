"""The common shape of recovery-plan step operators: ``step=`` and ``plan=`` JSON, read back as contracts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow.sdk import BaseOperator

from drflow.contracts import PlanFacts, StepDefinition

if TYPE_CHECKING:
    from drflow.spec.plans import StepBase


class PlanStepOperator(BaseOperator):
    """``step`` is the spec's step (:class:`StepDefinition`), ``plan`` the plan facts (:class:`PlanFacts`).

    Both arrive as the JSON of their ``to_params()``. The step definition is rebuilt when the DAG is
    parsed; the plan facts (every node of every component, the same for each task) on first use, so
    parsing stays cheap. tests/unit/test_contracts_walk.py builds both, and the spec's typed step, for
    every task of the example specs: a key an operator needs that no builder writes fails the suite.
    """

    template_fields: Sequence[str] = ()
    step_model: ClassVar[type[StepBase] | None] = None
    """The spec's model of the step this operator runs (its action's fields, typed), if it has one."""

    def __init__(self, *, step: Mapping[str, Any], plan: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.definition = StepDefinition.from_params(step)
        self.plan = dict(plan)
        """The plan facts as JSON, for the notifiers and the record (which speak JSON)."""

    @cached_property
    def facts(self) -> PlanFacts:
        return PlanFacts.from_params(self.plan)

    gated: ClassVar[bool] = True
    """Runs only after every question before it was approved by someone drflow accepts (the record is not)."""

    def pre_execute(self, context: Any) -> None:
        from drflow.operators.gates import require_approved

        if self.gated:
            require_approved(self, context, self.facts.audit_conn_id, self.definition.name)

    def step_timeout_s(self) -> float | None:
        from drflow.spec.types import parse_duration

        value = self.definition.timeout
        return parse_duration(value).total_seconds() if value else None


def refuse(why: str, unblock: str) -> NoReturn:
    """Fail the task without retries, in the contract's words."""
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(f"refused: {why}; to proceed: {unblock}")
