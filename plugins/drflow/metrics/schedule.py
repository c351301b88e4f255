"""Exercise completion: how many runs a schedule asked for in a window, against the results stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from drflow.metrics.evidence import EXERCISE, Evidence
from drflow.spec.exercises import ExerciseSchedule
from drflow.spec.types import airflow_schedule, schedule_interval

MAX_OCCURRENCES = 10_000


def occurrences(schedule: str, start: datetime, end: datetime) -> int:
    """Fire times of ``schedule`` (cron or preset) in ``(start, end]``."""
    from croniter import croniter

    count = 0
    it = croniter(airflow_schedule(schedule), start)
    while count < MAX_OCCURRENCES:
        fire = it.get_next(datetime)
        if fire > end:
            break
        count += 1
    return count


def completion(
    schedules: Sequence[ExerciseSchedule], evidence: Sequence[Evidence], now: datetime, period: timedelta
) -> dict[str, Any]:
    """Done against scheduled per exercise; each is judged over the period or its own interval, the longer.

    A yearly exercise judged over 90 days would be due never or once by chance; over a year it is due once.
    Runs beyond what was due do not make up for another exercise's missed ones.
    """
    rows: list[dict[str, Any]] = []
    for schedule in schedules:
        window = max(period, schedule_interval(schedule.schedule))
        start = now - window
        due = occurrences(schedule.schedule, start, now)
        done = sum(1 for e in evidence if e.kind == EXERCISE and e.name == schedule.name and start <= e.at <= now)
        rows.append(
            {
                "exercise": schedule.name,
                "schedule": schedule.schedule,
                "since": start.isoformat(),
                "scheduled": due,
                "done": done,
                "ratio": None if due == 0 else round(min(done, due) / due, 4),
            }
        )
    scheduled = sum(r["scheduled"] for r in rows)
    counted = sum(min(r["done"], r["scheduled"]) for r in rows)
    return {
        "scheduled": scheduled,
        "done": sum(r["done"] for r in rows),
        "ratio": None if scheduled == 0 else round(counted / scheduled, 4),
        "exercises": rows,
    }
