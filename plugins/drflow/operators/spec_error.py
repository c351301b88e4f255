"""The single task of a broken spec's placeholder DAG: it fails with the spec's validation errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator


class InvalidSpecOperator(BaseOperator):
    ui_color = "#f4a6a6"

    def __init__(self, *, source: str, errors: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.errors = list(errors)

    def execute(self, context: Any) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        listing = "\n".join(self.errors)
        raise AirflowFailException(
            f"spec {self.source} does not validate, so its DAGs are not loaded from it (those of its last version "
            f"that validated, if any, stay loaded and are tagged stale-spec):\n{listing}\n"
            f"Fix the file and check it with `drflow validate {self.source}`."
        )
