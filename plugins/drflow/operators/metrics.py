"""The metrics operator: compute the DR metrics from the store, keep the snapshot, send the StatsD gauges."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts.metrics import MetricsRun


class MetricsOperator(BaseOperator):
    ui_color = "#d6eaf8"

    def __init__(self, *, metrics: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = MetricsRun.from_params(metrics)

    def execute(self, context: Any) -> dict[str, Any]:
        from datetime import UTC, datetime, timedelta

        from airflow.sdk.observability import stats

        from drflow.metrics.compute import metrics_snapshot
        from drflow.metrics.gather import gather
        from drflow.metrics.gauges import gauges
        from drflow.metrics.history import store_snapshot
        from drflow.metrics.text import report_text

        now = datetime.now(UTC)
        reads = gather(self.metrics, now - timedelta(seconds=self.metrics.period_s))
        snapshot = metrics_snapshot(self.metrics, reads, now)
        keys = store_snapshot(self.metrics, snapshot, now)
        sent = gauges(snapshot)
        for name, value in sent:
            stats.gauge(name, value)
        self.log.info("DR metrics of %s:\n%s", self.metrics.spec_name, report_text(snapshot))
        self.log.info("%d gauges sent (drflow.%s.…); snapshots stored: %s", len(sent), self.metrics.spec_name, keys)
        return {
            "spec": snapshot["spec"],
            "status": snapshot["status"],
            "computed_at": snapshot["computed_at"],
            "components": {c["component"]: c["status"] for c in snapshot["components"]},
            "stored": keys,
            "gauges": len(sent),
        }
