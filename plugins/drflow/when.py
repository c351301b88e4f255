"""Times given at run time (CLI options, trigger forms): ISO 8601 with a timezone, never in the future; and
times read back from stored records and Airflow's API (:func:`stored_time`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

EXAMPLE = "2026-12-01T10:00:00+00:00"


def parse_run_time(text: str, what: str, *, now: datetime | None = None) -> datetime:
    """``text`` as an aware datetime; ValueError (naming ``what`` and the format) for a malformed,
    naive (no timezone: which instant would it be?) or future time."""
    value = str(text).strip()
    try:
        when = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{what} {value!r} is not an ISO 8601 time; write it with a timezone, like {EXAMPLE} "
            "(or 2026-12-01T10:00:00Z)"
        ) from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(
            f"{what} {value!r} has no timezone, so it could mean several instants; add one, "
            f"e.g. {value}Z for UTC or {value}+02:00 (format: {EXAMPLE})"
        )
    current = now or datetime.now(UTC)
    if when > current:
        raise ValueError(
            f"{what} {value!r} is in the future (it is now {current.astimezone(UTC).isoformat(timespec='seconds')}); "
            f"give a time that has passed, like {EXAMPLE}"
        )
    return when


def stored_time(value: Any) -> datetime | None:
    """A time a record or an API response holds (ISO 8601, ``Z`` for UTC; a datetime as it is), always aware
    (a time without a timezone is read as UTC); None when it is empty or not a time."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
