"""Snapshot operators: take a snapshot backup (EBS or RDS) into the store's catalog, and drill it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts import SnapshotRun
from drflow.contracts.drills import SnapshotDrillRun


class SnapshotBackupOperator(BaseOperator):
    """Snapshot the source, copy the snapshots cross-region, record them in every target; idempotent per run."""

    ui_color = "#f9e79f"

    def __init__(self, *, snapshot: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.snapshot = SnapshotRun.from_params(snapshot)

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.jobs.snapshot import SnapshotBackupRequest, source_from, take_snapshot_backup
        from drflow.operators.common import backup_id_for_run, manifest_summary

        run = self.snapshot
        dag_run = context["dag_run"]
        manifest = take_snapshot_backup(
            SnapshotBackupRequest(
                spec_name=run.spec_name,
                component=run.component,
                policy=run.policy,
                backup_id=backup_id_for_run(run.policy, dag_run.run_id, dag_run.run_after),
                targets=run.targets,
                retention_days=run.retention_days,
                retention_policy=run.retention_policy,
                work_dir=run.work_dir,
                source=source_from(run),
            )
        )
        for snap in manifest.extra.get("snapshots", []):
            self.log.info(
                "snapshot of %s: %s", snap["source"], {r: c["snapshot_id"] for r, c in snap["regions"].items()}
            )
        return {**manifest_summary(manifest), "snapshots": manifest.extra.get("snapshots", [])}


class SnapshotDrillOperator(BaseOperator):
    """Create the volume or instance from the newest snapshot backup, check it is available, delete it, report."""

    ui_color = "#fad7a0"

    def __init__(self, *, drill: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drill = SnapshotDrillRun.from_params(drill)

    def execute(self, context: Any) -> dict[str, Any]:
        from datetime import UTC, datetime

        from drflow.jobs.snapshot import latest_snapshot_backup, snapshot_drill, source_from
        from drflow.jobs.summaries import snapshot_drill_summary
        from drflow.operators.common import publish_note
        from drflow.units import human_duration

        run, drill = self.drill.snapshot, self.drill.facts
        started = datetime.now(UTC)
        catalog, manifest = latest_snapshot_backup(run.spec_name, run.component, run.policy, run.targets)
        result = snapshot_drill(manifest, source_from(run), region=self.drill.region, zone=run.zone)
        result.update(
            spec=run.spec_name,
            component=run.component,
            drill=drill.name,
            dag_id=getattr(context.get("dag"), "dag_id", None),
            run_id=getattr(context.get("dag_run"), "run_id", None),
            rto_s=drill.rto_s,
            rto_met=result["total_s"] <= drill.rto_s,
            # Recorded, not failed, as in a database drill: RPO compliance is judged from every source.
            rpo_s=drill.rpo_s,
            rpo_met=result["backup_age_s"] <= drill.rpo_s,
            started_at=started.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
        )
        result["summary"] = snapshot_drill_summary(run.component, result)
        key = catalog.write_report(run.component, "drill", f"{started:%Y%m%dT%H%M%SZ}-{drill.name}", result)
        self.log.info("drill report written to %s", catalog.store.url_for(key))
        publish_note(context, f"{result['summary']}\n\nReport: `{key}`", drill.notes_conn_id, self.log)
        if not result["rto_met"]:
            raise RuntimeError(
                f"snapshot drill of {run.component} took {human_duration(result['total_s'])}, more than the RTO of "
                f"{human_duration(drill.rto_s)}; make restores faster (smaller volumes, a closer region) or revise "
                "the RTO"
            )
        return result
