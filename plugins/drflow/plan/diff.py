"""What a spec change does to the DAGs: added, removed and altered DAGs and tasks, for review."""

from __future__ import annotations

from typing import Any

from drflow.plan.graph import DagPlan

_DAG_FIELDS = ("schedule", "owner", "retries", "retry_delay_s", "max_active_runs", "tags", "params", "error")


def diff_plans(before: list[DagPlan], after: list[DagPlan]) -> dict[str, Any]:
    old = {p.dag_id: p.to_json() for p in before}
    new = {p.dag_id: p.to_json() for p in after}
    changed: dict[str, list[str]] = {}
    for dag_id in sorted(old.keys() & new.keys()):
        lines = [
            f"{field}: {old[dag_id][field]!r} → {new[dag_id][field]!r}"
            for field in _DAG_FIELDS
            if old[dag_id][field] != new[dag_id][field]
        ]
        old_tasks = {t["task_id"]: t for t in old[dag_id]["tasks"]}
        new_tasks = {t["task_id"]: t for t in new[dag_id]["tasks"]}
        lines += [f"+ task {task_id}" for task_id in sorted(new_tasks.keys() - old_tasks.keys())]
        lines += [f"- task {task_id}" for task_id in sorted(old_tasks.keys() - new_tasks.keys())]
        for task_id in sorted(old_tasks.keys() & new_tasks.keys()):
            for key in sorted(old_tasks[task_id].keys() | new_tasks[task_id].keys()):
                if key == "params":
                    before_params, after_params = old_tasks[task_id]["params"], new_tasks[task_id]["params"]
                    for name in sorted(before_params.keys() | after_params.keys()):
                        if before_params.get(name) != after_params.get(name):
                            lines.append(
                                f"~ task {task_id}.{name}: {before_params.get(name)!r} → {after_params.get(name)!r}"
                            )
                elif old_tasks[task_id].get(key) != new_tasks[task_id].get(key) and key != "doc":
                    lines.append(
                        f"~ task {task_id}.{key}: {old_tasks[task_id].get(key)!r} → {new_tasks[task_id].get(key)!r}"
                    )
        if lines:
            changed[dag_id] = lines
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": changed,
    }
