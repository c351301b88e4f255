"""Durations and sizes in the spec's own notation (``30s``, ``15m``, ``1h``, ``2d``, ``512MiB``).

The one place that parses and writes them: the spec's value types (:mod:`drflow.spec.types`) and every
message, report and table that shows a duration or a size. Exact values are written exactly as a spec
would write them (``900`` seconds → ``15m``); measured values that are not whole units get one decimal
in the same units (``12.3s``, ``15.2m``, ``1.5GiB``). Standard library only, cheap to import.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|TiB)\s*$")
SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


def parse_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=int(match.group(1)) * DURATION_UNITS[match.group(2)])
    raise ValueError(f"{value!r} is not a duration; write a number and a unit, e.g. 30s, 5m, 1h, 2d or 1w")


def parse_positive_duration(value: object) -> timedelta:
    """A duration greater than zero: an objective, a timeout or an interval of 0s means nothing."""
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError(f"{value!r} is not greater than zero; write a duration greater than zero, e.g. 30s, 5m or 1h")
    return duration


def format_duration(value: timedelta) -> str:
    """The exact spec form of a whole number of seconds: ``15m``, ``1h``, ``2d``, ``90s``."""
    return _exact(int(value.total_seconds()), DURATION_UNITS)


def parse_size(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(match.group(1)) * SIZE_UNITS[match.group(2)]
    raise ValueError(f"{value!r} is not a size; write a number and a unit, e.g. 512MiB or 2GiB")


def format_size(value: int) -> str:
    """The exact spec form of a number of bytes: ``512MiB``, ``10GiB``, ``1000B``."""
    return _exact(value, SIZE_UNITS)


def _exact(value: int, units: dict[str, int]) -> str:
    """``value`` in the largest of ``units`` (smallest first, the first of size 1) that divides it."""
    for unit, size in reversed(units.items()):
        if value and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}{next(iter(units))}"


def _one_decimal(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def human_duration(seconds: float) -> str:
    """A measured duration for people: exact values as in a spec (``5m``), others to one decimal
    (``12.3s`` below two minutes, ``15.2m`` below two hours, ``3.5h`` below two days, then days)."""
    if seconds == int(seconds) and (seconds < 120 or int(seconds) % 60 == 0):
        return format_duration(timedelta(seconds=int(seconds)))
    for unit, below in (("s", 120), ("m", 7200), ("h", 172800)):
        if abs(seconds) < below:
            return f"{_one_decimal(seconds / DURATION_UNITS[unit])}{unit}"
    return f"{_one_decimal(seconds / DURATION_UNITS['d'])}d"


def human_size(value: int) -> str:
    """A measured size for people: exact values as in a spec (``20MiB``), others to one decimal
    in the largest unit below 1024 of it (``1.5GiB``, ``900B``)."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        size = SIZE_UNITS[unit]
        if abs(value) >= size:
            return f"{_one_decimal(value / size)}{unit}"
    return f"{value}B"


def duration_against(seconds: float, objective_s: float) -> str:
    """A measured duration in the unit its objective is written in, so the two read side by side:
    ``12.3m`` against an RPO of ``5m``, ``2.5h`` against ``1h``; below one such unit, as `human_duration`."""
    unit = next((u for u, size in reversed(DURATION_UNITS.items()) if objective_s and objective_s % size == 0), "s")
    size = DURATION_UNITS[unit]
    if unit == "s" or abs(seconds) < size:
        return human_duration(seconds)
    return f"{_one_decimal(seconds / size)}{unit}"
