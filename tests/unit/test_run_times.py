"""Times given at run time: a timezone is required, the future is refused, the format is shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drflow.cli import app
from drflow.operators.restore_step import RestoreRefused, parse_when
from drflow.when import EXAMPLE, parse_run_time

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_aware_past_times_pass() -> None:
    assert parse_run_time("2026-12-01T10:00:00Z", "t", now=NOW) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert parse_run_time(" 2026-12-01T12:00:00+02:00 ", "t", now=NOW) == datetime(2026, 12, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2026-12-01T10:00:00", "has no timezone"),
        ("2026-12-01T12:00:01+00:00", "is in the future"),
        ("2026-12-01T13:30:00+01:00", "is in the future"),
        ("yesterday", "is not an ISO 8601 time"),
    ],
)
def test_refused_times_name_the_problem_and_the_format(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_run_time(text, "target_time", now=NOW)
    assert problem in str(refused.value) and "target_time" in str(refused.value)
    assert EXAMPLE in str(refused.value)


def test_trigger_form_times_of_plan_restore_steps_are_no_longer_assumed_utc() -> None:
    with pytest.raises(RestoreRefused, match=r"incident_started_at .* has no timezone.*trigger the plan again"):
        parse_when("2026-11-30T10:00:00", "incident_started_at")
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with pytest.raises(RestoreRefused, match="target_time .* is in the future"):
        parse_when(future, "target_time")
    assert parse_when("2026-11-30T10:00:00Z", "target_time") == datetime(2026, 11, 30, 10, tzinfo=UTC)


def test_cli_refuses_a_future_target_time_before_touching_anything(tmp_path: Path) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
    result = CliRunner().invoke(
        app,
        [
            "restore",
            "--spec",
            "plan_specs/api-marketplace.yaml",
            "--component",
            "api-gateway",
            "--to",
            f"{tmp_path}/never",
            "--target-time",
            future,
        ],
    )
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert "is in the future" in output and EXAMPLE in output
    assert not (tmp_path / "never").exists()
