"""The lines of `make demo`'s report: one backup and its drill per component, read back from the store.

One shape per source type: a database (pg_basebackup + restore drill with checks), file storage (tar chain +
tree-digest drill) and a system image (EBS snapshot copied cross-region + a volume created and deleted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drflow.spec.model import Component, Spec
from drflow.spec.types import format_duration
from drflow.store.catalog import Catalog
from drflow.store.factory import target_catalogs
from drflow.store.manifest import BackupManifest
from drflow.units import human_duration, human_size

MARK = {True: "[green]✔[/green]", False: "[red]✘[/red]"}


@dataclass(frozen=True)
class DemoRun:
    """One component of the demo: the backup policy run and the drill run after it."""

    component: str
    policy: str
    drill: str

    def dag_ids(self, spec: str) -> list[str]:
        return [f"dr.{spec}.{self.component}.backup.{self.policy}", f"dr.{spec}.{self.component}.drill.{self.drill}"]


@dataclass(frozen=True)
class DemoResult:
    component: Component
    manifest: BackupManifest
    report: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.report.get("passed"))


def read_result(spec: Spec, run: DemoRun) -> DemoResult:
    """The newest report of the drill (from whichever of the component's targets holds it) and its backup."""
    component = spec.component(run.component)
    names = list(dict.fromkeys(t for p in component.backup_policies if p.name == run.policy for t in p.targets))
    catalogs: list[tuple[str, Catalog]] = target_catalogs(
        spec.metadata.name, [spec.target(n).model_dump(mode="json") for n in names]
    )
    reports = [
        (report, catalog)
        for _, catalog in catalogs
        for report in catalog.read_reports(run.component, "drill")
        if report.get("drill", run.drill) == run.drill
    ]
    if not reports:
        raise LookupError(f"no drill report of {run.component} in {', '.join(names)}: read the demo's Airflow log")
    report, catalog = max(reports, key=lambda rc: str(rc[0].get("finished_at") or rc[0].get("backup_id")))
    return DemoResult(component, catalog.get(run.component, report["backup_id"]), report)


def lines(result: DemoResult) -> list[str]:
    component, manifest, report = result.component, result.manifest, result.report
    verdict = "[green]PASSED[/green]" if result.passed else "[red]FAILED[/red]"
    rto = format_duration(component.rto)
    head = f"[bold]{component.title}[/bold] ({component.criticality}): backup {manifest.backup_id}"
    stored = f"{human_size(manifest.stored_bytes)} in {human_duration(manifest.duration_s)}"
    into = f"into {', '.join(manifest.targets)}"
    if manifest.backup_type == "snapshot":
        volumes = manifest.extra.get("snapshots") or []
        regions = ", ".join(manifest.extra.get("regions") or [])
        restored = ", ".join(f"{r.get('resource_id')} in {r.get('region')}" for r in report["restored"])
        return [
            f"{head}, EBS snapshot of {', '.join(str(s.get('source')) for s in volumes)} "
            f"({human_size(manifest.database_size_bytes or 0)}) in {regions}, "
            f"took {human_duration(manifest.duration_s)}, recorded {into}",
            f"  snapshot drill: {restored} created from the copy, available in "
            f"{human_duration(report['restore_s'])}, deleted; "
            f"{human_duration(report['total_s'])} against an RTO of {rto} {MARK[bool(report['rto_met'])]} → {verdict}",
        ]
    checks = report["checks"]
    rpo = f"backup age {human_duration(report['backup_age_s'])} against an RPO of {format_duration(component.rpo)}"
    passed = f"checks {sum(c['passed'] for c in checks)}/{len(checks)} passed"
    if report.get("suite_summary"):
        passed += f", validation suite {report['suite_summary']}"
    if manifest.method == "tar":
        what = (
            f"{manifest.backup_type} of {manifest.extra.get('tree_files')} files "
            f"({human_size(int(manifest.extra.get('tree_bytes') or 0))}) stored as {stored} {into}"
        )
        drill = "  files drill (tree digest against the backup's)"
    else:
        what = f"{human_size(manifest.database_size_bytes or 0)} of data stored as {stored} {into}"
        drill = "  restore drill"
    return [
        f"{head}, {what}",
        f"{drill}: {human_duration(report['restore_s'])} against an RTO of {rto} {MARK[bool(report['rto_met'])]}; "
        f"{rpo} "
        f"{MARK[bool(report['rpo_met'])]}; {passed} → {verdict}",
    ]
