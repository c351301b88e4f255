"""The StatsD gauges of a metrics snapshot: documented names, values that were measured (unknowns are not sent).

Airflow puts its ``[metrics] statsd_prefix`` (default ``airflow``) in front of each name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STATUS_VALUE = {"green": 0, "amber": 1, "red": 2}


def _put(gauges: list[tuple[str, float]], name: str, value: Any) -> None:
    if isinstance(value, bool):
        gauges.append((name, 1.0 if value else 0.0))
    elif isinstance(value, int | float):
        gauges.append((name, float(value)))


def _rates(gauges: list[tuple[str, float]], prefix: str, figures: Mapping[str, Any]) -> None:
    _put(gauges, f"{prefix}.status", STATUS_VALUE.get(str(figures.get("status"))))
    _put(gauges, f"{prefix}.recovery_success_ratio", (figures.get("recovery") or {}).get("ratio"))
    _put(gauges, f"{prefix}.validation_success_ratio", (figures.get("validation") or {}).get("ratio"))
    _put(gauges, f"{prefix}.exercise_completion_ratio", (figures.get("exercise_completion") or {}).get("ratio"))
    _put(gauges, f"{prefix}.mttr_seconds", figures.get("mttr_s"))


def gauges(snapshot: Mapping[str, Any]) -> list[tuple[str, float]]:
    """``(name, value)`` of every gauge, spec figures first: ``drflow.<spec>.…``, ``drflow.<spec>.<component>.…``."""
    spec = f"drflow.{snapshot['spec']}"
    found: list[tuple[str, float]] = []
    _rates(found, spec, snapshot)
    for component in snapshot["components"]:
        prefix = f"{spec}.{component['component']}"
        _rates(found, prefix, component)
        _put(found, f"{prefix}.rto_objective_seconds", component["objectives"]["rto_s"])
        _put(found, f"{prefix}.rpo_objective_seconds", component["objectives"]["rpo_s"])
        _put(found, f"{prefix}.rto_seconds", component["actual"]["rto_s"])
        _put(found, f"{prefix}.rpo_seconds", component["actual"]["rpo_s"])
        rpo = component.get("rpo_compliance")
        if rpo is not None and not rpo["stale"]:
            _put(found, f"{prefix}.rpo_compliant", bool(rpo["compliant"]))
            _put(found, f"{prefix}.achievable_rpo_seconds", rpo.get("achievable_rpo_s"))
        for row in component["backups"]:
            _put(found, f"{prefix}.backup_age_seconds.{row['source']}.{row['target']}", row["age_s"])
    return found
