"""Escalation levels reached by the time a question has waited since it was first asked, never by try number.

The operators (drflow.operators.escalation) ask and judge with :func:`due_after`; the recovery record lists
the levels each question of a run reached with the same function, from the dates Airflow keeps of the
question (``created_at``, carried over every try) and of its answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

HUMAN_TYPES = frozenset({"approval", "manual"})


class QuestionClockError(RuntimeError):
    """When the question was first asked is unknown: no escalation level can be proven due."""


@dataclass(frozen=True)
class Due:
    """Where a question stands after waiting some time since it was first asked."""

    level: int
    """How many escalation levels are due (0: only the step's own people)."""
    wait: timedelta | None
    """How long to wait from now: until the next level is due, else until the step's timeout (None: forever)."""
    escalates: bool
    """Whether the end of that wait is the next level (else it is the step's timeout)."""
    expired: bool
    """The step's timeout has passed: nobody answered in time."""


def waited_since(asked: datetime | None, now: datetime) -> float:
    """Seconds a question has waited; a clock behind the one that dated the question counts as no wait."""
    if asked is None:
        raise QuestionClockError(
            "drflow cannot tell how long the question has waited: Airflow's record of the question has no date it "
            "was first asked"
        )
    return max(0.0, (now - asked).total_seconds())


def due_after(after_s: Sequence[float], timeout_s: float | None, waited_s: float) -> Due:
    """The levels due (each ``after_s``, in order) and the next wait once a question has waited ``waited_s``.

    A level is due from its ``after`` on, inclusive; a level not before the step's timeout is never reached.
    The wait is at least a second, so a clock read a little early never asks again in a tight loop.
    """
    reachable = [after for after in after_s if timeout_s is None or after < timeout_s]
    level = sum(1 for after in reachable if after <= waited_s)
    expired = timeout_s is not None and waited_s >= timeout_s
    if level < len(reachable):
        return Due(level, timedelta(seconds=max(1.0, reachable[level] - waited_s)), True, expired)
    if timeout_s is None:
        return Due(level, None, False, False)
    return Due(level, timedelta(seconds=max(1.0, timeout_s - waited_s)), False, expired)


def escalations(
    steps: Sequence[Mapping[str, Any]],
    approvals: Sequence[Mapping[str, Any]],
    plan: Mapping[str, Any],
    now: datetime,
) -> list[dict[str, Any]]:
    """Each level every question of the run reached: which task, which level, who was added, when it was due.

    A question waited from its first asking until its answer, the end of its task, or ``now``.
    """
    from drflow.when import stored_time

    levels = list(plan.get("escalation") or [])
    asked = {a["task_id"]: a for a in approvals}
    found: list[dict[str, Any]] = []
    for step in steps:
        question = asked.get(step.get("task_id"))
        start = stored_time(question.get("asked_at")) if question else None
        if question is None or start is None or not levels:
            continue
        end = stored_time(question.get("at")) or stored_time(step.get("end")) or now
        timeout_s = step.get("timeout_s")
        due = due_after([float(level["after_s"]) for level in levels], timeout_s, waited_since(start, end))
        found += [
            {
                "task_id": step.get("task_id"),
                "level": level.get("name"),
                "people": list(level.get("people") or []),
                "channels": list(level.get("channels") or []),
                "after_s": level.get("after_s"),
                "at": (start + timedelta(seconds=float(level["after_s"]))).isoformat(),
            }
            for level in levels[: due.level]
        ]
    return found
