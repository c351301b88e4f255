"""One dashboard page: every component of every spec, from the store and Airflow's REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drflow.dashboard.live import TokenApi, read_live
from drflow.dashboard.specs import metrics_runs, specs_dir
from drflow.metrics.html import Live, page, spec_section
from drflow.metrics.series import Series, collect

ORDER = {"green": 0, "amber": 1, "red": 2}


def with_live(snapshot: dict[str, Any], live: Live) -> dict[str, Any]:
    """A failed drill run with no report of its own turns its component red (the store alone cannot tell)."""
    for component in snapshot["components"]:
        proof = component.get("last_proof") or {}
        for link in live.failed_drills.get(component["component"], []):
            if link.run_id and link.run_id == proof.get("run_id"):
                continue  # its report is the last proof: already judged from it
            component["reasons"].insert(0, f"the newest run of drill {link.text}; it wrote no report: see its log")
            component["status"] = "red"
    snapshot["status"] = max((c["status"] for c in snapshot["components"]), key=ORDER.__getitem__, default="green")
    return snapshot


def gather_all(
    api_url: str, ui_root: str, token: str, now: datetime
) -> tuple[list[tuple[dict[str, Any], dict[str, Series]]], Live, list[str]]:
    runs, broken = metrics_runs()
    live = read_live(runs, TokenApi(api_url, token), ui_root)
    computed = []
    for run in runs:
        snapshot, series = collect(run, now)
        computed.append((with_live(snapshot, live), series))
    return computed, live, broken


def dashboard_page(api_url: str, ui_root: str, token: str, now: datetime) -> str:
    computed, live, broken = gather_all(api_url, ui_root, token, now)
    sections = [spec_section(snapshot, series, live) for snapshot, series in computed]
    if broken:
        sections.append("<h2>Specs that do not validate</h2><ul>" + "".join(f"<li>{b}</li>" for b in broken) + "</ul>")
    if not computed and not broken:
        sections.append(f"<p>No spec in {specs_dir()}.</p>")
    note = f"Read {now:%Y-%m-%d %H:%M:%S} UTC from the backup store and Airflow's REST API."
    return page("DR dashboard: are we recoverable right now?", sections, note=note, script=True)


def dashboard_status(api_url: str, ui_root: str, token: str, now: datetime) -> dict[str, Any]:
    computed, live, broken = gather_all(api_url, ui_root, token, now)
    return {
        "checked_at": now.isoformat(),
        "api_error": live.error,
        "broken_specs": broken,
        "specs": [
            {
                "spec": snapshot["spec"],
                "status": snapshot["status"],
                "components": [
                    {
                        "component": c["component"],
                        "status": c["status"],
                        "reasons": c["reasons"],
                        "open_runs": [link.__dict__ for link in live.open_runs.get(c["component"], [])],
                        "approvals": [link.__dict__ for link in live.approvals.get(c["component"], [])],
                    }
                    for c in snapshot["components"]
                ],
            }
            for snapshot, _ in computed
        ],
    }
