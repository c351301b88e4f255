"""The only task of a draft or retired recovery plan's DAG: it fails and says why the plan cannot run."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class PlanNotApprovedOperator(BaseOperator):
    ui_color = "#d5d8dc"

    def __init__(self, *, plan_name: str, status: str, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan_name = plan_name
        self.status = status
        self.message = message

    def execute(self, context: Any) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(self.message)
