"""Gather one dag run's audit trail from Airflow's REST API: run, task instances and tries, HITL, events.

The result is the raw API JSON, grouped; :mod:`drflow.audit.record` turns it into the recovery record.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drflow.audit.api import ApiClient, ApiNotFoundError, get_all, q
from drflow.when import stored_time

TRIGGER_EVENT = "trigger_dag_run"
# A trigger is logged just before its run is created; look this far back for it.
TRIGGER_WINDOW = timedelta(minutes=5)


def gather_run(api: ApiClient, dag_id: str, run_id: str) -> dict[str, Any]:
    run_path = f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id)}"
    dag_run = api.get(run_path)
    task_instances = get_all(api, f"{run_path}/taskInstances", "task_instances")
    tries: dict[str, list[dict[str, Any]]] = {}
    for ti in task_instances:
        if not ti.get("try_number"):
            continue  # never ran (skipped, upstream failed): no history
        map_index = ti.get("map_index", -1)
        key = ti["task_id"] if map_index in (None, -1) else f"{ti['task_id']}[{map_index}]"
        suffix = q(ti["task_id"]) if map_index in (None, -1) else f"{q(ti['task_id'])}/{map_index}"
        tries[key] = get_all(api, f"{run_path}/taskInstances/{suffix}/tries", "task_instances")
    try:
        hitl = get_all(api, f"{run_path}/hitlDetails", "hitl_details")
    except ApiNotFoundError:
        hitl = []
    events = get_all(api, "/api/v2/eventLogs", "event_logs", {"dag_id": dag_id, "run_id": run_id})
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "dag_run": dag_run,
        "task_instances": task_instances,
        "tries": tries,
        "hitl_details": hitl,
        "event_logs": events,
        "trigger_events": _trigger_events(api, dag_id, dag_run),
    }


def _trigger_events(api: ApiClient, dag_id: str, dag_run: dict[str, Any]) -> list[dict[str, Any]]:
    """``trigger_dag_run`` events carry no run id: fetch the ones logged shortly before the run was queued.

    A clear (a retried step) moves ``queued_at`` to the clear, never ``run_after``: a ``queued_at`` later than
    ``run_after`` by more than the window is a clear's, and the trigger is looked for before ``run_after``.
    """
    queued = stored_time(dag_run.get("queued_at"))
    run_after = stored_time(dag_run.get("run_after"))
    anchor = queued or run_after or stored_time(dag_run.get("start_date"))
    if queued is not None and run_after is not None and queued - run_after > TRIGGER_WINDOW:
        anchor = run_after
    if anchor is None:
        return []
    params = {
        "dag_id": dag_id,
        "event": TRIGGER_EVENT,
        "after": (anchor - TRIGGER_WINDOW).isoformat(),
        "before": (anchor + timedelta(seconds=5)).isoformat(),
    }
    return get_all(api, "/api/v2/eventLogs", "event_logs", params)
