"""The specs the dashboard shows: the ones the DAG file reads (``$DRFLOW_SPECS_DIR``, else plan_specs)."""

from __future__ import annotations

import os
from pathlib import Path

from drflow.contracts.metrics import MetricsRun
from drflow.plan.metrics import metrics_run
from drflow.spec.load import load_specs

PROJECT_SPECS = Path(__file__).resolve().parents[3] / "plan_specs"


def specs_dir() -> Path:
    return Path(os.environ.get("DRFLOW_SPECS_DIR") or PROJECT_SPECS)


def metrics_runs() -> tuple[list[MetricsRun], list[str]]:
    """A metrics run per spec that validates, and one line per spec that does not."""
    loaded, failures = load_specs([specs_dir()])
    broken = [
        f"{source}: does not validate ({len([d for d in found if d.is_error])} errors)" for source, found in failures
    ]
    return [metrics_run(item.spec) for item in loaded], broken
