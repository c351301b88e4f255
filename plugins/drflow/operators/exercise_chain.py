"""A plan run that a full-scale exercise triggered: how it is marked, and how four eyes is proven for it.

Airflow starts such a run `triggered_by: operator`, naming no person it authenticated. The exercise's `start`
question is where a person did act: the participant who answered it started the real plan. The run's conf
`exercise` names that person and the exercise run; the declaration verifies both through Airflow's REST API
(the run is operator-triggered, its id is the one the exercise run gives its plan run, the exercise run's
`start` was approved by that person) and then treats the starter as the person who triggered the run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

EXERCISE_CONF_KEY = "exercise"
START_TASK = "start"
_RUN_ID_SAFE = re.compile(r"[^A-Za-z0-9_.~:+-]")


def plan_run_id(exercise: str, exercise_run_id: str) -> str:
    """The id of the plan run an exercise run triggers: one per exercise run, so a retry cannot start a second."""
    return f"exercise__{exercise}__{_RUN_ID_SAFE.sub('-', exercise_run_id)}"


def exercise_mark(dag_run: Any) -> Mapping[str, Any] | None:
    """The exercise an operator-triggered plan run belongs to (its conf says so), else None."""
    run_type = getattr(dag_run, "run_type", None)
    if str(getattr(run_type, "value", run_type)) != "operator_triggered":
        return None
    mark = (getattr(dag_run, "conf", None) or {}).get(EXERCISE_CONF_KEY)
    return mark if isinstance(mark, Mapping) else None


def verify_exercise_start(api: Any, dag_run: Any, spec: str) -> str:
    """The participant who started the exercise that triggered ``dag_run``, proven; ValueError saying why not."""
    from drflow.audit.api import q

    mark = (getattr(dag_run, "conf", None) or {}).get(EXERCISE_CONF_KEY)
    if not isinstance(mark, Mapping):
        raise ValueError("the run was triggered by another DAG's task and is not marked as an exercise in its conf")
    dag_id, run_id, name = str(mark.get("dag_id")), str(mark.get("run_id")), str(mark.get("name"))
    starter = mark.get("started_by")
    if not dag_id.startswith(f"dr.{spec}.exercise."):
        raise ValueError(f"its conf names {dag_id!r}, which is no exercise DAG of spec {spec!r}")
    if dag_run.run_id != plan_run_id(name, run_id):
        raise ValueError(f"its run id {dag_run.run_id!r} is not the one exercise run {run_id!r} gives its plan run")
    detail = api.get(f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id)}/taskInstances/{START_TASK}/-1/hitlDetails")
    by = detail.get("responded_by_user") or {}
    answered = str(by.get("name") or by.get("id") or "") if isinstance(by, Mapping) else ""
    if "Approve" not in (detail.get("chosen_options") or []) or not answered or answered != starter:
        raise ValueError(
            f"the start of exercise run {run_id!r} was not approved by {starter!r} "
            f"(answered by {answered or 'nobody'}: {detail.get('chosen_options') or 'no answer'})"
        )
    return str(starter)
