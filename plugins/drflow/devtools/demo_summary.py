"""The table that ends `make demo`'s report: every component, each drill the demo ran, measured RTO and RPO.

Read back from the store, not from what the runs printed: for each drill the newest report of kind ``drill``
found in any of the component's targets; one older than the demo's start counts as missing (✘).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich.table import Table

from drflow.spec.model import Component, Spec
from drflow.store.factory import target_catalogs
from drflow.units import format_duration, human_duration

MARK = {True: "[green]✔[/green]", False: "[red]✘[/red]"}


@dataclass(frozen=True)
class DrillRef:
    """One drill of the demo: the spec component it drills and the name its reports carry.

    ``service`` is the row it belongs to: the component itself, or the one whose part it is (the portal's
    assets tree is part of the API Portal)."""

    component: str
    drill: str
    kind: str
    service: str


@dataclass(frozen=True)
class DrillRow:
    ref: DrillRef
    component: Component
    report: dict[str, Any] | None

    @property
    def passed(self) -> bool:
        return self.report is not None and bool(self.report.get("passed"))


def newest_report(spec: Spec, component: Component, drill: str, since: datetime) -> dict[str, Any] | None:
    """The newest report of ``drill`` in any target of the component finished at ``since`` or later."""
    names = [t for p in component.backup_policies for t in p.targets]
    if component.config is not None:
        names += component.config.targets
    targets = [spec.target(n).model_dump(mode="json") for n in dict.fromkeys(names)]
    found = [
        report
        for _, catalog in target_catalogs(spec.metadata.name, targets)
        for report in catalog.read_reports(component.name, "drill")
        if report.get("drill") == drill and report.get("finished_at")
    ]
    fresh = [r for r in found if datetime.fromisoformat(str(r["finished_at"])) >= since]
    return max(fresh, key=lambda r: str(r["finished_at"])) if fresh else None


def read_rows(spec: Spec, refs: Sequence[DrillRef], since: datetime) -> list[DrillRow]:
    """One row per drill, grouped by service in the spec's order of components."""
    order = {c.name: i for i, c in enumerate(spec.components)}
    ordered = sorted(refs, key=lambda r: order[r.service])  # stable: the service's drills in the demo's order
    rows = []
    for ref in ordered:
        component = spec.component(ref.component)
        rows.append(DrillRow(ref, component, newest_report(spec, component, ref.drill, since)))
    return rows


def _measured(seconds: Any, objective: timedelta, met: Any) -> str:
    if seconds is None:
        return f"[red]not recorded[/red] / {format_duration(objective)} {MARK[False]}"
    verdict = bool(met) if met is not None else float(seconds) <= objective.total_seconds()
    return f"{human_duration(round(float(seconds), 1))} / {format_duration(objective)} {MARK[verdict]}"


def table(spec: Spec, rows: Sequence[DrillRow]) -> Table:
    services = sorted({row.ref.service for row in rows}, key=[c.name for c in spec.components].index)
    passed = sum(row.passed for row in rows)
    out = Table(
        title=f"{len(services)} components, {passed}/{len(rows)} drills passed (read back from the store)",
        title_justify="left",
    )
    for header in ("component", "criticality", "drill", "RTO: restore time / objective", "RPO: data age / objective"):
        out.add_column(header)
    out.add_column("result")
    shown: set[str] = set()
    for row in rows:
        service = spec.component(row.ref.service)
        first = service.name not in shown
        shown.add(service.name)
        name = service.title if first else ""
        level = service.criticality if first else ""
        what = f"{row.ref.drill} ({row.ref.kind})"
        if row.ref.component != row.ref.service:
            what = f"{row.component.title}: {what}"
        report = row.report
        if report is None:
            out.add_row(name, level, what, "[red]no report of this run ✘[/red]", "", MARK[False])
            continue
        # A snapshot drill is judged on its total (create, available, delete); the others on the restore.
        rto = _measured(report.get("total_s", report.get("restore_s")), row.component.rto, report.get("rto_met"))
        rpo = _measured(report.get("backup_age_s"), row.component.rpo, report.get("rpo_met"))
        out.add_row(name, level, what, rto, rpo, MARK[row.passed] + (" PASSED" if row.passed else " FAILED"))
    return out
