"""Specs on disk → DAG plans, without Airflow: the front half of the pipeline."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from drflow.plan.build import build_plans, error_plan
from drflow.plan.graph import DagPlan
from drflow.spec.load import load_specs


def compile_specs(paths: Iterable[Path | str]) -> list[DagPlan]:
    """Every DAG plan of the given specs; a spec that fails validation yields its error plan instead."""
    loaded, failures = load_specs([Path(p) for p in paths])
    plans: list[DagPlan] = []
    for item in loaded:
        try:
            plans.extend(build_plans(item.spec, item.path))
        except Exception as exc:  # a builder defect shows as this spec's error DAG, never hides other specs
            plans.append(error_plan(item.path, [f"{item.path}: drflow could not plan this spec: {exc!r}"]))
    for source, diagnostics in failures:
        plans.append(error_plan(source, [str(d) for d in diagnostics]))
    return plans
