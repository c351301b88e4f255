"""The period of a compliance report and what its schedules asked for in it: pure date arithmetic.

A period is ``[start, end)`` in UTC. ``--from``/``--to`` take a date (``2026-11-01``: that whole day, so
``--to 2026-11-30`` includes the 30th) or a time with a timezone; the default is the 30 days up to now.
A period never reaches past now: nothing could have happened there yet.

A scheduled run at ``T`` (a cron occurrence, as Airflow's cron timetables run it) is *done* when something
started in ``[T, next occurrence)``; *pending* when that window is still open at ``now``; *beyond retention*
when it is older than the retention keeps evidence (the store may have deleted what it did); else *missed*.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from drflow.spec.types import airflow_schedule

DEFAULT_DAYS = 30
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Stepping croniter costs ~0.1 ms a step; a year of a */4 schedule is 131k steps. Plain cron fields are
# expanded per day instead; extensions (L, W, #) fall back to croniter.
_STEP_LIMIT = 400_000


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    def __contains__(self, when: object) -> bool:
        return isinstance(when, datetime) and self.start <= when < self.end

    def to_json(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def parse_period(from_text: str | None, to_text: str | None, now: datetime) -> Period:
    """The report's period; ValueError saying what is wrong and how to write it."""
    end = min(_parse(to_text, "--to", end_of_day=True), now) if to_text else now
    start = _parse(from_text, "--from", end_of_day=False) if from_text else end - timedelta(days=DEFAULT_DAYS)
    if start >= now:
        raise ValueError(
            f"--from {from_text} is in the future (now is {now.isoformat(timespec='seconds')}): nothing has happened "
            "there yet; give a day up to today, e.g. --from 2026-11-01"
        )
    if start >= end:
        raise ValueError(
            f"the period from {start.isoformat()} to {end.isoformat()} is empty (a period ends at now at the latest); "
            "give --from before --to, e.g. --from 2026-11-01 --to 2026-11-30"
        )
    return Period(start, end)


def _parse(text: str, option: str, *, end_of_day: bool) -> datetime:
    value = text.strip()
    if _DATE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{option} {value!r} is not a date; write YYYY-MM-DD, e.g. 2026-11-30") from None
        start = datetime.combine(day, time(), UTC)
        return start + timedelta(days=1) if end_of_day else start
    try:
        when = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{option} {value!r} is neither a date (2026-11-30) nor a time with a timezone (2026-11-30T12:00:00Z)"
        ) from None
    if when.tzinfo is None:
        raise ValueError(f"{option} {value!r} has no timezone; add one, e.g. {value}Z for UTC, or give a date")
    return when.astimezone(UTC)


def occurrences(schedule: str, start: datetime, end: datetime) -> list[datetime]:
    """Every time in ``[start, end)`` (UTC) that the schedule (cron or preset) fires."""
    cron = airflow_schedule(schedule)
    from croniter import croniter

    try:
        (minutes, hours, days, months, weekdays), nth = croniter.expand(cron)
    except (ValueError, KeyError):
        return _stepped(cron, start, end)
    fields = (minutes, hours, days, months, weekdays)
    if nth or any(not isinstance(v, int) for field in fields for v in field if v != "*"):
        return _stepped(cron, start, end)
    times = sorted(time(h, m) for h in _values(hours, range(24)) for m in _values(minutes, range(60)))
    found = []
    day = start.astimezone(UTC).date()
    while (midnight := datetime.combine(day, time(), UTC)) < end:
        if _fires(day, days, months, weekdays):
            found += [at for t in times if start <= (at := datetime.combine(day, t, UTC)) < end]
        day = (midnight + timedelta(days=1)).date()
    return found


def next_occurrence(schedule: str, after: datetime) -> datetime:
    """The schedule's first time strictly after ``after``."""
    from croniter import croniter

    return croniter(airflow_schedule(schedule), after).get_next(datetime).astimezone(UTC)


def _values(field: list[int | str], every: range) -> list[int]:
    return list(every) if field == ["*"] else [int(v) for v in field]


def _fires(day: date, days: list[int | str], months: list[int | str], weekdays: list[int | str]) -> bool:
    if months != ["*"] and day.month not in months:
        return False
    any_day, any_weekday = days == ["*"], weekdays == ["*"]
    day_matches = any_day or day.day in days
    weekday_matches = any_weekday or day.isoweekday() % 7 in {int(v) % 7 for v in weekdays}
    # Cron: with both day-of-month and day-of-week restricted, either one fires.
    if not any_day and not any_weekday:
        return day_matches or weekday_matches
    return day_matches and weekday_matches


def _stepped(cron: str, start: datetime, end: datetime) -> list[datetime]:
    from croniter import croniter

    itr = croniter(cron, start - timedelta(microseconds=1))
    found: list[datetime] = []
    while len(found) < _STEP_LIMIT:
        at = itr.get_next(datetime).astimezone(UTC)
        if at >= end:
            break
        found.append(at)
    return found


@dataclass(frozen=True)
class Coverage:
    scheduled: int
    done: int
    pending: int
    beyond_retention: int
    missed: list[datetime]

    def to_json(self) -> dict[str, object]:
        return {
            "scheduled": self.scheduled,
            "done": self.done,
            "pending": self.pending,
            "beyond_retention": self.beyond_retention,
            "missed": len(self.missed),
            "missed_at": [m.isoformat() for m in self.missed[:20]],
        }


def coverage(
    schedule: str,
    period: Period,
    started: Sequence[datetime],
    now: datetime,
    *,
    evidence_since: datetime | None = None,
) -> Coverage:
    """How many runs the schedule asked for in the period, and which of them something started for.

    ``started``: when each run (backup, drill, exercise) started, any time; ``evidence_since``: the oldest
    time the store still proves runs from (retention deletes older ones), None when it keeps everything.
    """
    wanted = occurrences(schedule, period.start, period.end)
    if not wanted:
        return Coverage(0, 0, 0, 0, [])
    # The window of the last occurrence in the period closes at the schedule's next one, maybe after it.
    bounds = [*wanted[1:], next_occurrence(schedule, wanted[-1])]
    times = sorted(started)
    done = pending = beyond = 0
    missed = []
    for at, until in zip(wanted, bounds, strict=True):
        index = bisect_left(times, at)
        if index < len(times) and times[index] < until:
            done += 1
        elif until > now:
            pending += 1
        elif evidence_since is not None and at < evidence_since:
            beyond += 1
        else:
            missed.append(at)
    return Coverage(len(wanted), done, pending, beyond, missed)
