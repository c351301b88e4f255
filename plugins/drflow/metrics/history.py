"""Metrics snapshots kept as history in the store: one report of kind `metrics` per component and time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from drflow.contracts.metrics import MetricsRun
from drflow.metrics.gather import read_report, report_names
from drflow.store.catalog import Catalog
from drflow.store.factory import open_store

KIND = "metrics"
SPEC_FIGURES = ("status", "recovery", "validation", "mttr_s", "exercise_completion")


def history_catalog(run: MetricsRun) -> Catalog | None:
    if run.report_target is None:
        return None
    return Catalog(open_store(run.target(run.report_target)), run.spec_name)


def store_snapshot(run: MetricsRun, snapshot: Mapping[str, Any], now: datetime) -> list[str]:
    """Write each component's metrics (with the spec's figures) to the report target; returns the keys."""
    catalog = history_catalog(run)
    if catalog is None:
        return []
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    spec = {name: snapshot.get(name) for name in SPEC_FIGURES}
    head = {k: snapshot[k] for k in ("kind", "format_version", "spec", "computed_at", "period_s")}
    return [
        catalog.write_report(component["component"], KIND, stamp, {**head, "spec_figures": spec, **component})
        for component in snapshot["components"]
    ]


def read_history(run: MetricsRun, component: str, since: datetime) -> list[dict[str, Any]]:
    """The component's stored snapshots computed at or after ``since``, oldest first."""
    catalog = history_catalog(run)
    if catalog is None:
        return []
    found = []
    for name in report_names(catalog, component, KIND):
        if name >= since.strftime("%Y%m%dT%H%M%SZ"):
            report = read_report(catalog, component, KIND, name)
            if report is not None:
                found.append(report[1])
    return found
