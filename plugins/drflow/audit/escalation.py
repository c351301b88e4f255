"""Escalations of a plan run, read back from Airflow's metadata: try ``n`` of a question is level ``n - 1``.

See drflow.operators.escalation for why each escalation level is a new try of the HITL task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

HUMAN_TYPES = frozenset({"approval", "manual"})


def escalations(steps: Sequence[Mapping[str, Any]], plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each level every question of the run reached: which task, which level, who was added, when."""
    levels = list(plan.get("escalation") or [])
    found: list[dict[str, Any]] = []
    for step in steps:
        if step.get("type") not in HUMAN_TYPES and "answer" not in step:
            continue
        for attempt in step.get("try_history") or []:
            number = int(attempt.get("try_number") or 0)
            if 2 <= number <= len(levels) + 1:
                level = levels[number - 2]
                found.append(
                    {
                        "task_id": step.get("task_id"),
                        "level": level.get("name"),
                        "people": list(level.get("people") or []),
                        "channels": list(level.get("channels") or []),
                        "after_s": level.get("after_s"),
                        "at": attempt.get("start"),
                    }
                )
    return found
