"""Value types of the spec language: durations, sizes, schedules, names."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, StringConstraints, WithJsonSchema

# Re-exported: the spec's value types are parsed and written by drflow.units (Airflow- and pydantic-free).
from drflow.units import (
    format_duration,
    format_size,
    parse_duration,
    parse_positive_duration,
    parse_size,
)

SCHEDULE_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
# Airflow has no @quarterly preset; drflow maps it to a cron expression.
PRESET_CRON = {"@quarterly": "0 0 1 */3 *"}

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
QUEUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"


# A path drflow writes into commands and configuration files on a host: absolute, and nothing a
# shell or a config parser reads as syntax. Spaces are fine (drflow quotes every path it passes).
_PLAIN_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._+,@%=:/-")
PLAIN_PATH_PATTERN = r"^(?!.*(^|/)\.\.(/|$))/[A-Za-z0-9 ._+,@%=:/-]*$"


def parse_plain_path(value: object) -> str:
    example = "e.g. /etc/pgbackrest/pgbackrest.conf"
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a path; write an absolute path, {example}")
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path; write it from the root, {example}")
    odd = sorted({char for char in value if char not in _PLAIN_PATH_CHARS})
    if odd:
        shown = ", ".join(repr(char) for char in odd)
        raise ValueError(
            f"{value!r} is not a plain path: it contains {shown}; use only letters, digits, spaces and "
            f". _ - + , @ % = : / in it, {example}"
        )
    if ".." in value.split("/"):
        raise ValueError(f"{value!r} contains a '..' segment; write the path it means without '..', {example}")
    return value


def parse_schedule(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a schedule; write a cron expression such as '0 2 * * *' or a preset")
    text = " ".join(value.split())
    if text.startswith("@"):
        if text in SCHEDULE_PRESETS:
            return text
        raise ValueError(f"unknown schedule preset {text!r}; use one of {', '.join(SCHEDULE_PRESETS)}")
    if not _is_cron(text):
        raise ValueError(
            f"{value!r} is not a valid cron expression; write five fields "
            "'minute hour day-of-month month day-of-week', e.g. '0 2 * * *' (daily at 02:00)"
        )
    return text


@lru_cache(maxsize=512)
def _is_cron(text: str) -> bool:
    from croniter import croniter

    return len(text.split()) == 5 and bool(croniter.is_valid(text))


def airflow_schedule(schedule: str) -> str:
    return PRESET_CRON.get(schedule, schedule)


@lru_cache(maxsize=512)
def schedule_interval(schedule: str) -> timedelta:
    """The longest gap between two consecutive runs of a schedule (used for RPO feasibility).

    Computed from the expanded cron fields (times of day × days that fire), not by stepping
    croniter, which costs about 0.1 ms a step: too slow for DAG parsing.
    """
    fixed = {
        "@hourly": timedelta(hours=1),
        "@daily": timedelta(days=1),
        "@weekly": timedelta(weeks=1),
        "@monthly": timedelta(days=31),
        "@quarterly": timedelta(days=92),
        "@yearly": timedelta(days=366),
    }
    if schedule in fixed:
        return fixed[schedule]
    from croniter import croniter

    try:
        (minutes, hours, days, months, weekdays), nth_weekday = croniter.expand(schedule)
    except (ValueError, KeyError):
        return _stepped_interval(schedule)
    fields = (minutes, hours, days, months, weekdays)
    if nth_weekday or any(not isinstance(value, int) for field in fields for value in field if value != "*"):
        return _stepped_interval(schedule)  # L, W and similar extensions
    times = sorted(h * 60 + m for h in _cron_values(hours, 24) for m in _cron_values(minutes, 60))
    widest = max((b - a for a, b in zip(times, times[1:], strict=False)), default=0)
    fire_days = _cron_days(days, months, weekdays)
    if len(fire_days) < 2:
        return timedelta(days=_CRON_WINDOW_DAYS)  # fires at most once in eight years
    for first, second in zip(fire_days, fire_days[1:], strict=False):
        widest = max(widest, (second - first) * 1440 + times[0] - times[-1])
    return timedelta(minutes=widest)


# Two leap-year cycles: enough to see the widest gap of any day-of-month/month/weekday combination.
_CRON_WINDOW_DAYS = 8 * 366


def _cron_values(field: list[int | str], size: int) -> list[int]:
    return list(range(size)) if field == ["*"] else [int(value) for value in field]


def _cron_days(days: list[int | str], months: list[int | str], weekdays: list[int | str]) -> list[int]:
    """Day numbers (from 2024-01-01) that fire, over a window long enough to contain the widest gap."""
    from datetime import date

    any_day, any_weekday = days == ["*"], weekdays == ["*"]
    if any_day and any_weekday and months == ["*"]:
        return [0, 1]
    window = 15 if any_day and months == ["*"] else _CRON_WINDOW_DAYS
    day_set, month_set = set(days), set(months)
    weekday_set = {int(value) % 7 for value in weekdays if value != "*"}  # cron: 0 and 7 are Sunday
    start = date(2024, 1, 1).toordinal()
    fired = []
    for offset in range(window):
        day = date.fromordinal(start + offset)
        if months != ["*"] and day.month not in month_set:
            continue
        day_matches = any_day or day.day in day_set
        weekday_matches = any_weekday or day.isoweekday() % 7 in weekday_set
        # Cron fires on either when both day-of-month and day-of-week are restricted.
        if (day_matches or weekday_matches) if not (any_day or any_weekday) else (day_matches and weekday_matches):
            fired.append(offset)
    return fired


def _stepped_interval(schedule: str) -> timedelta:
    from datetime import datetime

    from croniter import croniter

    # Walk a year of fire times starting at a fixed instant; the widest gap is what matters for the RPO.
    itr = croniter(schedule, datetime(2026, 1, 1))
    previous = itr.get_next(datetime)
    widest = timedelta(0)
    for _ in range(600):
        current = itr.get_next(datetime)
        widest = max(widest, current - previous)
        previous = current
        if current.year > 2026:
            break
    return widest


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*\d+\s*(s|m|h|d|w)\s*$",
            "description": "A duration: a number and a unit s, m, h, d or w, e.g. 30s, 5m, 1h, 2d.",
        }
    ),
]

PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(parse_positive_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*0*[1-9]\d*\s*(s|m|h|d|w)\s*$",
            "description": "A duration greater than zero: a number and a unit s, m, h, d or w, e.g. 30s, 5m, 1h.",
        }
    ),
]

PlainPath = Annotated[
    str,
    BeforeValidator(parse_plain_path),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": PLAIN_PATH_PATTERN,
            "description": "An absolute path without '..' or shell characters (spaces are fine).",
        }
    ),
]

Size = Annotated[
    int,
    BeforeValidator(parse_size),
    PlainSerializer(format_size, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*\d+\s*(B|KiB|MiB|GiB|TiB)\s*$",
            "description": "A size: a number and a unit B, KiB, MiB, GiB or TiB, e.g. 512MiB.",
        }
    ),
]

Schedule = Annotated[
    str,
    BeforeValidator(parse_schedule),
    WithJsonSchema(
        {
            "type": "string",
            # Five fields or a preset: editors catch the common mistakes; croniter judges the rest.
            "pattern": r"^\s*(@(" + "|".join(p[1:] for p in SCHEDULE_PRESETS) + r")|\S+(\s+\S+){4})\s*$",
            "description": "A cron expression ('0 2 * * *') or a preset: " + ", ".join(SCHEDULE_PRESETS) + ".",
        }
    ),
]

# A Celery queue (Airflow's `queue` of an operator; `airflow celery worker -q NAME` serves it).
Queue = Annotated[
    str,
    StringConstraints(pattern=QUEUE_PATTERN),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": QUEUE_PATTERN,
            "description": "A Celery queue name, e.g. drflow-db: letters, digits and . _ : -.",
        }
    ),
]


def queue_field(what: str, default: str) -> Any:
    """An optional `queue:` of the spec: the Celery queue of `what`, else of `default`."""
    return Field(default=None, description=f'Celery queue of {what} (README "Run it on Celery"); default: {default}.')


# A value a check must return, written as text, a number or a boolean (true -> "true").
ExpectedValue = Annotated[
    str,
    BeforeValidator(lambda v: str(v).lower() if isinstance(v, bool) else str(v) if isinstance(v, int | float) else v),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
