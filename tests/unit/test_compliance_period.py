"""The compliance report's period arithmetic: periods, schedule occurrences, runs done, pending and missed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter

from drflow.jobs.compliance_period import Period, coverage, occurrences, parse_period
from drflow.jobs.compliance_runs import exercise_evidence
from drflow.spec.exercises import ExerciseSchedule

NOW = datetime(2026, 12, 1, 4, 46, 13, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_default_period_is_the_30_days_up_to_now() -> None:
    assert parse_period(None, None, NOW) == Period(NOW - timedelta(days=30), NOW)


def test_dates_cover_whole_days_and_the_period_stops_at_now() -> None:
    assert parse_period("2026-11-01", "2026-11-30", NOW) == Period(at("2026-11-01T00:00"), at("2026-12-01T00:00"))
    # To a day not over yet: up to now; a time with an offset is converted to UTC.
    assert parse_period("2026-11-30T23:00:00-02:00", "2026-12-31", NOW) == Period(at("2026-12-01T01:00"), NOW)
    # Only a --to in the future: the 30 days up to now, not the 30 days before that future day.
    assert parse_period(None, "2099-01-01", NOW) == Period(NOW - timedelta(days=30), NOW)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-30", "2026-11-01", "is empty"),
        ("2026-12-05", None, r"--from 2026-12-05 is in the future \(now is 2026-12-01T04:46:13\+00:00\)"),
        ("2026-11-31", None, "is not a date; write YYYY-MM-DD"),
        ("2026-11-01T10:00", None, "has no timezone"),
        ("last week", None, "is neither a date"),
    ],
)
def test_bad_periods_say_how_to_write_them(start: str, end: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_period(start, end, NOW)


@pytest.mark.parametrize(
    "schedule",
    ["0 2 * * *", "*/4 * * * *", "0 4 * * 0", "0 3 1,15 * 1", "30 5 * 2 *", "@hourly", "@weekly", "@quarterly"],
)
def test_occurrences_are_the_times_cron_fires_in_the_period(schedule: str) -> None:
    start = at("2026-01-01T00:00")
    end = start + timedelta(days=3 if schedule.startswith("*/") else 100, hours=12)  # croniter steps slowly
    found = occurrences(schedule, start, end)
    cron = {"@hourly": "0 * * * *", "@weekly": "0 0 * * 0", "@quarterly": "0 0 1 */3 *"}.get(schedule, schedule)
    itr = croniter(cron, start - timedelta(seconds=1))
    expected = []
    while (when := itr.get_next(datetime).replace(tzinfo=UTC)) < end:
        expected.append(when)
    assert found == expected and found


def test_counts_of_common_schedules_in_november() -> None:
    start, end = at("2026-11-01T00:00"), at("2026-12-01T00:00")
    assert len(occurrences("0 2 * * *", start, end)) == 30
    assert len(occurrences("*/4 * * * *", start, end)) == 30 * 24 * 15
    assert len(occurrences("0 4 * * 0", start, end)) == 5  # Sundays: 1, 8, 15, 22, 29
    # Day of month and day of week both restricted: either fires (1st, 15th and every Monday).
    assert len(occurrences("0 3 1,15 * 1", start, end)) == 2 + 5
    assert occurrences("0 0 L * *", start, end + timedelta(days=31)) == [at("2026-11-30T00:00"), at("2026-12-31T00:00")]


def test_a_run_counts_for_the_occurrence_whose_window_it_started_in() -> None:
    period = Period(at("2026-11-28T00:00"), at("2026-12-01T04:00"))
    started = [at("2026-11-28T02:00:07"), at("2026-11-29T14:00"), at("2026-12-01T02:00:03")]
    result = coverage("0 2 * * *", period, started, at("2026-12-01T04:00"))
    # 28th done; 29th done late (same window); 30th missed; 1st done.
    assert (result.scheduled, result.done, result.pending, result.beyond_retention) == (4, 3, 0, 0)
    assert result.missed == [at("2026-11-30T02:00")]


def test_an_open_window_is_pending_and_old_gaps_are_beyond_retention() -> None:
    now = at("2026-12-01T04:00")
    period = Period(at("2026-11-25T00:00"), now)
    result = coverage("0 2 * * *", period, [], now, evidence_since=at("2026-11-28T00:00"))
    # 25th-27th: the store may have expired them; 28th-30th: missed; 1st: its window is still open.
    assert (result.scheduled, result.done, result.pending, result.beyond_retention, len(result.missed)) == (
        7,
        0,
        1,
        3,
        3,
    )
    # The last occurrence's window runs past the period's end: a run after it still counts.
    closed = Period(at("2026-11-25T00:00"), at("2026-11-25T12:00"))
    late = coverage("0 2 * * *", closed, [at("2026-11-25T20:00")], now)
    assert (late.scheduled, late.done) == (1, 1)


def test_exercises_are_counted_against_their_schedule_and_unscheduled_ones_listed() -> None:
    def result(name: str, when: datetime, outcome: str) -> dict[str, object]:
        return {
            "kind": "exercise",
            "exercise": name,
            "type": "tabletop",
            "started_at": when.isoformat(),
            "outcome": outcome,
            "measured": {"rto_s": 600.0, "rpo_s": None},
            "objectives": {"rto_s": 900, "rpo_s": 300},
            "findings": [{"step": "declare", "ok": False, "detail": "the bridge number was outdated"}],
        }

    reports = {
        "exercise": {
            "20261010T090000Z-quarterly": result("quarterly", at("2026-10-10T09:00"), "passed"),
            "20260715T090000Z-quarterly": result("quarterly", at("2026-07-15T09:00"), "failed"),
            "20261120T090000Z-adhoc": result("adhoc", at("2026-11-20T09:00"), "passed"),
        }
    }
    program = [
        ExerciseSchedule("quarterly", "@quarterly", ("users",)),
        ExerciseSchedule("yearly", "@yearly", ("users",)),
    ]
    found = {e["exercise"]: e for e in exercise_evidence(program, reports, Period(at("2026-01-01T00:00"), NOW), NOW)}
    quarterly = found["quarterly"]["runs"]
    # Jan 1 and Apr 1: nothing; Jul 1 and Oct 1: done (failed, then passed).
    assert (quarterly["scheduled"], quarterly["done"], quarterly["missed"]) == (4, 2, 2)
    assert (found["quarterly"]["done"], found["quarterly"]["passed"]) == (2, 1)
    assert found["quarterly"]["results"][1]["gaps"] == ["declare: the bridge number was outdated"]
    # The year's exercise is not done yet, but the year is not over: pending, not missed.
    assert (found["yearly"]["runs"]["pending"], found["yearly"]["runs"]["missed"], found["yearly"]["done"]) == (1, 0, 0)
    assert found["adhoc"]["runs"] is None and found["adhoc"]["done"] == 1
