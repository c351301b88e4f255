"""The renderer never lets one DAG it cannot build hide the others."""

from pathlib import Path

import pytest

from drflow.render import actions
from drflow.render.airflow import render_specs

SPEC = Path(__file__).resolve().parents[2] / "plan_specs" / "api-marketplace.yaml"


def test_a_dag_that_cannot_be_built_is_shown_failing_and_the_rest_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(actions.ACTIONS, "report.drill")
    actions.operator_class.cache_clear()
    try:
        dags = render_specs([SPEC])
    finally:
        actions.operator_class.cache_clear()
    drill = dags["dr.api-marketplace.user-database.drill.weekly-restore"]
    assert [t.task_id for t in drill.tasks] == ["spec_is_invalid"]
    assert "could not build DAG dr.api-marketplace.user-database.drill.weekly-restore" in (drill.doc_md or "")
    assert "no operator for plan action 'report.drill'" in (drill.doc_md or "")
    backup = dags["dr.api-marketplace.user-database.backup.daily-full"]
    assert [t.task_id for t in backup.tasks] == ["check_source", "take_backup", "verify_backup"]
