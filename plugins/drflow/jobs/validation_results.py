"""Validation results and the one place their measurements are judged: expected against got, and by how much.

Every check of a suite yields a :class:`CheckResult` holding :class:`Measure`\\ s, one per thing it
compared (a table, a percentile, the status, the TPS ratio). A measure that fails says what was expected,
what came back, the tolerance and the difference, e.g. ``public.accounts: expected 5000 ± 1% (4950..5050),
got 4800 (-200 rows, -4.0%)``. Pure: no database, no network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from drflow.spec.validation import format_latency


@dataclass(frozen=True)
class Measure:
    subject: str
    expected: str
    got: str
    passed: bool
    by: str | None = None
    """How far off a failed measure is (or the margin of a passed one)."""
    tolerance: str | None = None

    def line(self) -> str:
        text = f"{self.subject}: expected {self.expected}, got {self.got}"
        return text + (f" ({self.by})" if self.by and not self.passed else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "expected": self.expected,
            "got": self.got,
            "passed": self.passed,
            "by": self.by,
            "tolerance": self.tolerance,
        }


@dataclass(frozen=True)
class CheckResult:
    name: str
    type: str
    category: str
    measures: tuple[Measure, ...] = ()
    error: str | None = None
    """Why the check could not measure (a refused query, a missing table, nothing answering)."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Raw figures behind the measures (latencies, TPS, the baseline's LSN …)."""

    @property
    def passed(self) -> bool:
        return self.error is None and all(m.passed for m in self.measures)

    def problem(self) -> str:
        """One line: which check failed and by how much."""
        what = f"{self.name} ({self.type})"
        if self.error:
            return f"{what}: {self.error}"
        return f"{what}: " + "; ".join(m.line() for m in self.measures if not m.passed)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "category": self.category,
            "passed": self.passed,
            "measures": [m.to_json() for m in self.measures],
            "error": self.error,
            "detail": self.detail,
            "problem": None if self.passed else self.problem(),
        }


@dataclass(frozen=True)
class SuiteResult:
    results: tuple[CheckResult, ...] = ()

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def problems(self) -> list[str]:
        return [r.problem() for r in self.results if not r.passed]

    def summary(self) -> str:
        """``5/6 passed (data 3/4, functional 1/1, performance 1/1)``."""
        by: dict[str, list[bool]] = {}
        for result in self.results:
            by.setdefault(result.category, []).append(result.passed)
        parts = ", ".join(f"{c} {sum(v)}/{len(v)}" for c, v in sorted(by.items()))
        return f"{sum(r.passed for r in self.results)}/{len(self.results)} passed" + (f" ({parts})" if parts else "")

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.results]


# -- the comparisons ------------------------------------------------------------------------------------------


def equal(subject: str, expected: str, got: str) -> Measure:
    return Measure(subject, expected, got, expected == got, None if expected == got else "differs")


def tolerance_rows(recorded: int, tolerance: str) -> float:
    """The rows a tolerance allows around ``recorded``: ``10`` → 10, ``1%`` → 1% of the recorded count."""
    if tolerance.endswith("%"):
        return recorded * float(tolerance[:-1]) / 100
    return float(tolerance)


def within(subject: str, recorded: int, got: int, tolerance: str) -> Measure:
    """A count against the recorded one: passes within the tolerance either way."""
    allowed = tolerance_rows(recorded, tolerance)
    low, high = math.ceil(recorded - allowed), math.floor(recorded + allowed)
    diff = got - recorded
    share = diff / recorded * 100 if recorded else 0.0
    pct = f", {share:+.1f}%" if abs(share) >= 0.05 else f", {share:+.2g}%" if share else ""
    expected = f"{recorded}" if allowed == 0 else f"{recorded} ± {tolerance} ({low}..{high})"
    passed = low <= got <= high
    by = f"{diff:+d} rows{pct}" + ("" if passed or allowed == 0 else f", {abs(diff) - allowed:g} beyond the tolerance")
    return Measure(subject, expected, str(got), passed, by, tolerance)


def at_most(subject: str, limit: int, got: int, noun: str = "rows") -> Measure:
    passed = got <= limit
    noun = noun.removesuffix("s") if limit == 1 else noun
    return Measure(subject, f"at most {limit} {noun}", f"{got}", passed, None if passed else f"{got - limit} too many")


def latency_at_most(subject: str, limit_s: float, got_s: float) -> Measure:
    passed = got_s <= limit_s
    by = None if passed else f"{format_latency(got_s - limit_s)} over the limit"
    return Measure(subject, f"at most {format_latency(limit_s)}", format_latency(round(got_s, 4)), passed, by)


def status_in(subject: str, allowed: Sequence[int], got: int | None, error: str | None = None) -> Measure:
    shown = str(got) if got is not None else f"no answer ({error})"
    passed = got is not None and got in allowed
    return Measure(subject, " or ".join(map(str, allowed)), shown, passed, None if passed else "another status")


def body_contains(subject: str, wanted: str, body: str) -> Measure:
    passed = wanted in body
    return Measure(subject, f"to contain {wanted!r}", _snippet(body), passed, None if passed else "not found")


def body_matches(subject: str, pattern: str, body: str) -> Measure:
    passed = re.search(pattern, body) is not None
    return Measure(subject, f"to match /{pattern}/", _snippet(body), passed, None if passed else "no match")


def tps_at_least(subject: str, floor: float, got: float) -> Measure:
    passed = got >= floor
    by = None if passed else f"{floor - got:.1f} tps short ({got / floor * 100:.0f}% of it)"
    return Measure(subject, f"at least {floor:g} tps", f"{got:.1f} tps", passed, by)


def ratio_at_least(subject: str, baseline: float, got: float, min_ratio: float) -> Measure:
    """The copy's figure against the source's: at least ``min_ratio`` of it."""
    floor = baseline * min_ratio
    ratio = got / baseline if baseline else math.inf
    passed = got >= floor
    by = None if passed else f"{floor - got:.1f} tps short of {min_ratio:g}× the source's"
    expected = f"at least {min_ratio:g} × {baseline:.1f} tps (source at backup time) = {floor:.1f} tps"
    return Measure(subject, expected, f"{got:.1f} tps ({ratio:.2f}×)", passed, by, f"{min_ratio:g}×")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _snippet(body: str, limit: int = 120) -> str:
    text = " ".join(body.split())
    return repr(text if len(text) <= limit else text[:limit] + "…")
