"""The data a recovery lost (its actual RPO), from what its steps returned.

Pure: the record task hands in every step's XCom result. A promotion loses at most the replica's lag at
the moment the lag gate measured it (``guards.lag``); a restore loses everything after the point it
restored (the target time of a point-in-time restore, else the end of the backup), counted up to the
incident's start (the form's ``incident_started_at``), else up to the moment the run was queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drflow.when import stored_time


def data_loss(
    plan: Mapping[str, Any], conf: Mapping[str, Any], dag_run: Mapping[str, Any], results: Mapping[str, Any]
) -> dict[str, Any]:
    """``measured_s`` (the worst source), each source, and whether it met the plan's RPO."""
    reference_text = conf.get("incident_started_at") or dag_run.get("queued_at") or dag_run.get("start_date")
    reference = stored_time(reference_text)
    sources: list[dict[str, Any]] = []
    for step, result in results.items():
        if not isinstance(result, Mapping):
            continue
        lag = (result.get("guards") or {}).get("lag") if isinstance(result.get("guards"), Mapping) else None
        if isinstance(lag, Mapping) and isinstance(lag.get("lag_s"), int | float):
            sources.append(
                {
                    "step": step,
                    "how": "promotion: replica lag measured by the lag gate"
                    + (" (an upper bound: the primary was unreachable)" if lag.get("upper_bound") else ""),
                    "lost_s": round(float(lag["lag_s"]), 3),
                    "lost_bytes": lag.get("lag_bytes"),
                }
            )
            continue
        point_text = result.get("point_in_time") or result.get("backup_finished_at")
        point = stored_time(point_text)
        if point is not None and reference is not None and "restored" in result:
            what = "point-in-time restore to" if result.get("point_in_time") else "restore of backup finished at"
            sources.append(
                {
                    "step": step,
                    "how": f"{what} {point_text}, counted to {reference_text}",
                    "lost_s": round(max(0.0, (reference - point).total_seconds()), 3),
                    "lost_bytes": None,
                }
            )
    rpo_s = plan.get("rpo_s")
    measured = max((s["lost_s"] for s in sources), default=None)
    return {
        "measured_s": measured,
        "rpo_s": rpo_s,
        "rpo_met": None if measured is None or not isinstance(rpo_s, int | float) else measured <= rpo_s,
        "sources": sources,
    }
