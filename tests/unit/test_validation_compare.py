"""The one place validation measurements are judged: expected against got, the tolerance, and by how much."""

from __future__ import annotations

import pytest

from drflow.jobs.validation_results import (
    CheckResult,
    SuiteResult,
    at_most,
    body_contains,
    equal,
    latency_at_most,
    percentile,
    ratio_at_least,
    status_in,
    tps_at_least,
    within,
)


@pytest.mark.parametrize(
    ("recorded", "got", "tolerance", "passed", "line"),
    [
        (5000, 5000, "0", True, "t: expected 5000, got 5000"),
        (5000, 4999, "0", False, "t: expected 5000, got 4999 (-1 rows, -0.02%)"),
        (5000, 5050, "1%", True, "t: expected 5000 ± 1% (4950..5050), got 5050"),
        (
            5000,
            4900,
            "1%",
            False,
            "t: expected 5000 ± 1% (4950..5050), got 4900 (-100 rows, -2.0%, 50 beyond the tolerance)",
        ),
        (100, 111, "10", False, "t: expected 100 ± 10 (90..110), got 111 (+11 rows, +11.0%, 1 beyond the tolerance)"),
        (0, 3, "0", False, "t: expected 0, got 3 (+3 rows)"),
    ],
)
def test_counts_within_a_tolerance_say_by_how_much(
    recorded: int, got: int, tolerance: str, passed: bool, line: str
) -> None:
    measure = within("t", recorded, got, tolerance)
    assert measure.passed is passed and measure.line() == line
    assert measure.tolerance == tolerance


def test_limits_and_ratios() -> None:
    assert at_most("orphans", 0, 3).line() == "orphans: expected at most 0 rows, got 3 (3 too many)"
    assert at_most("orphans", 5, 3).passed
    slow = latency_at_most("p95", 0.3, 0.42)
    assert slow.line() == "p95: expected at most 300ms, got 420ms (120ms over the limit)"
    assert latency_at_most("p95", 0.3, 0.3).passed
    assert (
        tps_at_least("tps", 100, 80).line()
        == "tps: expected at least 100 tps, got 80.0 tps (20.0 tps short (80% of it))"
    )
    short = ratio_at_least("tps", 1000.0, 400.0, 0.5)
    assert short.line() == (
        "tps: expected at least 0.5 × 1000.0 tps (source at backup time) = 500.0 tps, got 400.0 tps (0.40×) "
        "(100.0 tps short of 0.5× the source's)"
    )
    assert ratio_at_least("tps", 1000.0, 600.0, 0.5).passed
    assert status_in("status", [200, 204], 503).line() == "status: expected 200 or 204, got 503 (another status)"
    assert status_in("status", [200], None, "ConnectionError").got == "no answer (ConnectionError)"
    assert body_contains("body", "ready", '{"state": "starting"}').line() == (
        "body: expected to contain 'ready', got '{\"state\": \"starting\"}' (not found)"
    )
    assert equal("v", "1", "1").passed and not equal("v", "1", "2").passed


def test_nearest_rank_percentiles() -> None:
    values = [0.01 * n for n in range(1, 101)]  # 10ms … 1s
    assert percentile(values, 50) == pytest.approx(0.5)
    assert percentile(values, 95) == pytest.approx(0.95)
    assert percentile(values, 100) == pytest.approx(1.0)
    assert percentile([0.2, 0.1], 1) == 0.1
    with pytest.raises(ValueError):
        percentile([], 50)


def test_a_suite_summarises_by_category_and_names_each_failure() -> None:
    ok = CheckResult("intact", "checksum", "data", (equal("public.a", "x", "x"),))
    bad = CheckResult("complete", "row-count", "data", (within("public.a", 10, 7, "0"),))
    broken = CheckResult("health", "http", "functional", error="no answer")
    suite = SuiteResult((ok, bad, broken))
    assert not suite.passed
    assert suite.summary() == "1/3 passed (data 1/2, functional 0/1)"
    assert suite.problems() == [
        "complete (row-count): public.a: expected 10, got 7 (-3 rows, -30.0%)",
        "health (http): no answer",
    ]
    assert suite.to_json()[1]["problem"] == suite.problems()[0] and suite.to_json()[0]["problem"] is None
