"""Which operator runs each plan action. One line per action; operators are imported on first use."""

from __future__ import annotations

import importlib
from functools import cache

from airflow.sdk import BaseOperator

ACTIONS: dict[str, str] = {
    "spec.invalid": "drflow.operators.spec_error.InvalidSpecOperator",
    "postgres.check_source": "drflow.operators.backup.PostgresCheckSourceOperator",
    "postgres.full_backup": "drflow.operators.backup.PostgresFullBackupOperator",
    "store.verify_backup": "drflow.operators.store.VerifyBackupOperator",
    "store.select_backup": "drflow.operators.store.SelectBackupOperator",
    "postgres.restore_drill": "drflow.operators.drill.RestoreDrillOperator",
    "report.drill": "drflow.operators.drill.DrillReportOperator",
}


@cache
def operator_class(action: str) -> type[BaseOperator]:
    try:
        dotted = ACTIONS[action]
    except KeyError:
        raise KeyError(f"no operator for plan action {action!r}; add it to drflow.render.actions.ACTIONS") from None
    module, _, name = dotted.rpartition(".")
    cls: type[BaseOperator] = getattr(importlib.import_module(module), name)
    return cls
