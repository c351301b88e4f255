"""Documentation currency: who owns a spec or a plan, when it was last reviewed, and when it is due again.

``reviewed: YYYY-MM-DD`` is a calendar date (no time, no timezone); ``review_every`` is a calendar period,
``6mo`` or ``1y`` (or days and weeks, ``90d``, ``26w``), by default six months. A plan without a date of its
own is covered by the spec's review. Validation warns about every stale document at its ``reviewed`` line;
the compliance report counts stale and never-reviewed ones.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DEFAULT_REVIEW_EVERY = "6mo"
_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")
_PERIOD = re.compile(r"^\s*(\d+)\s*(mo|y|d|w)\s*$")


def parse_review_date(value: object) -> date:
    if isinstance(value, date):
        return value
    match = _DATE.match(str(value)) if isinstance(value, str) else None
    if match:
        try:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date; write the day of the last review as YYYY-MM-DD, e.g. 2026-11-16")


def parse_review_period(value: object) -> str:
    match = _PERIOD.match(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"{value!r} is not a review period; write a number greater than zero and mo (months), y (years), "
            "w (weeks) or d (days), e.g. 6mo, 1y or 90d"
        )
    return f"{int(match.group(1))}{match.group(2)}"


ReviewDate = Annotated[
    date,
    BeforeValidator(parse_review_date),
    PlainSerializer(date.isoformat, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "A date, YYYY-MM-DD, e.g. 2026-11-16."}
    ),
]
ReviewPeriod = Annotated[
    str,
    BeforeValidator(parse_review_period),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*\d+\s*(mo|y|w|d)\s*$",
            "description": "A review period: a number and mo (months), y, w or d, e.g. 6mo, 1y, 90d.",
        }
    ),
]


def due_date(reviewed: date, every: str) -> date:
    """The day the next review is due: ``reviewed`` plus the period (months keep the day, or the month's last)."""
    match = _PERIOD.match(every)
    if match is None:
        raise ValueError(parse_review_period(every))  # raises with the message for a malformed period
    number, unit = int(match.group(1)), match.group(2)
    if unit in ("d", "w"):
        return reviewed + timedelta(days=number * (7 if unit == "w" else 1))
    months = number * (12 if unit == "y" else 1)
    year, month = divmod(reviewed.month - 1 + months, 12)
    year, month = reviewed.year + year, month + 1
    return date(year, month, min(reviewed.day, calendar.monthrange(year, month)[1]))
