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
                    lines.extend(
                        _leaf_changes(f"task {task_id}", old_tasks[task_id]["params"], new_tasks[task_id]["params"])
                    )
                elif old_tasks[task_id].get(key) != new_tasks[task_id].get(key) and key != "doc":
                    lines.extend(
                        _leaf_changes(f"task {task_id}.{key}", old_tasks[task_id].get(key), new_tasks[task_id].get(key))
                    )
        if lines:
            changed[dag_id] = lines
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": changed,
    }


def _leaf_changes(path: str, before: Any, after: Any) -> list[str]:
    """`~ path.to.leaf: old → new` for every differing leaf, so a change deep in a nested value stays short."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        lines: list[str] = []
        for key in sorted(before.keys() | after.keys(), key=str):
            lines.extend(_leaf_changes(f"{path}.{key}", before.get(key), after.get(key)))
        return lines
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        lines = []
        for index, (old_item, new_item) in enumerate(zip(before, after, strict=True)):
            lines.extend(_leaf_changes(f"{path}[{index}]", old_item, new_item))
        return lines
    return [f"~ {path}: {before!r} → {after!r}"]
