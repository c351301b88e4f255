"""What the charts show: measured recovery times and the newest backup's age over time, per component."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from drflow.contracts.metrics import MetricsRun
from drflow.metrics.compute import attribute, metrics_snapshot
from drflow.metrics.gather import TargetRead, gather

CHART_WINDOW = timedelta(days=14)
POINTS = 120


@dataclass(frozen=True)
class Series:
    restore: list[tuple[datetime, float, bool | None]]
    """Each drill, exercise or recovery that measured a recovery time: when, how long, whether it passed."""
    backup_age: list[tuple[datetime, float, bool | None]]
    """The age of the newest stored recovery point (any source, any target) sampled across the window."""


def backup_age_series(reads: Sequence[TargetRead], now: datetime, window: timedelta) -> list[tuple[datetime, float]]:
    finished = sorted({m.finished_at for read in reads for m in read.backups})
    if not finished:
        return []
    start = max(now - window, finished[0])
    step = (now - start) / (POINTS - 1)
    series = []
    index = 0
    for i in range(POINTS):
        at = start + step * i
        while index < len(finished) and finished[index] <= at:
            index += 1
        if index:
            series.append((at, round((at - finished[index - 1]).total_seconds(), 3)))
    return series


def series(
    run: MetricsRun, reads: Mapping[str, Sequence[TargetRead]], now: datetime, window: timedelta = CHART_WINDOW
) -> dict[str, Series]:
    since = now - max(window, timedelta(seconds=run.period_s))
    evidence = attribute(reads)
    result = {}
    for component in run.components:
        timed = [e for e in evidence.get(component.name, []) if e.recovers and e.rto_s is not None and e.at >= since]
        ages = backup_age_series(reads.get(component.name, ()), now, window)
        result[component.name] = Series(
            restore=[(e.at, float(e.rto_s or 0.0), e.passed) for e in timed],
            backup_age=[(at, age, None) for at, age in ages],
        )
    return result


def collect(run: MetricsRun, now: datetime) -> tuple[dict[str, object], dict[str, Series]]:
    """Read the store once; the snapshot and the chart series of every component."""
    reads = gather(run, now - max(timedelta(seconds=run.period_s), CHART_WINDOW))
    return metrics_snapshot(run, reads, now), series(run, reads, now)
