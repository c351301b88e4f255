"""Durations and sizes: one notation, the spec's, for parsing and for every message."""

from __future__ import annotations

from datetime import timedelta

import pytest

from drflow.units import format_duration, format_size, human_duration, human_size, parse_duration, parse_size


@pytest.mark.parametrize("text", ["30s", "15m", "1h", "2d", "1w", "90s"])
def test_durations_round_trip(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("text", ["512MiB", "10GiB", "1KiB", "1000B", "2TiB"])
def test_sizes_round_trip(text: str) -> None:
    assert format_size(parse_size(text)) == text


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (30, "30s"),
        (12.34, "12.3s"),
        (300, "5m"),
        (900, "15m"),
        (912.5, "15.2m"),
        (3600, "1h"),
        (5400, "90m"),
        (12600.5, "3.5h"),
        (172800, "2d"),
        (259300.0, "3d"),
    ],
)
def test_measured_durations_read_like_the_spec(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0B"),
        (900, "900B"),
        (1536, "1.5KiB"),
        (20 * 2**20, "20MiB"),
        (int(71.04 * 2**20), "71MiB"),
        (3 * 2**30 // 2, "1.5GiB"),
        (5 * 2**40, "5TiB"),
    ],
)
def test_measured_sizes_read_like_the_spec(value: int, shown: str) -> None:
    assert human_size(value) == shown


def test_spec_types_use_the_same_functions() -> None:
    from drflow.spec import types

    assert types.parse_duration is parse_duration and types.format_size is format_size
    assert parse_duration("2d") == timedelta(days=2)
