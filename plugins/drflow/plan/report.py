"""The RPO-compliance report DAG of a spec (kind `report`)."""

from __future__ import annotations

from drflow.contracts.rpo import DEFAULT_MAX_SLOT_RETAINED, RpoComponent, RpoReplica, RpoReportRun
from drflow.plan.common import targets_params
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.spec.model import Spec
from drflow.spec.types import airflow_schedule, format_duration, schedule_interval

KIND_REPORT = "report"


def rpo_components(spec: Spec) -> list[RpoComponent]:
    """Every component with something backed up, with the sources of its recovery points."""
    components = []
    for component in spec.components:
        datastore = component.postgres  # None for files, s3-prefix and snapshot-only: their newest entry counts
        if component.datastore is None and component.snapshots is None and component.config is None:
            continue  # nothing of it is backed up
        policies = component.backup_policies
        target_names = list(dict.fromkeys(t for p in policies for t in [*p.targets, *p.copy_to]))
        wal = [p for p in policies if p.method == "pg_receivewal"]
        components.append(
            RpoComponent(
                name=component.name,
                rpo_s=int(component.rpo.total_seconds()),
                targets=tuple(targets_params(spec, target_names)),
                primary_conn_id=datastore.primary.conn_id if datastore else None,
                replicas=tuple(RpoReplica(r.name, r.conn_id, r.slot) for r in datastore.replicas) if datastore else (),
                max_slot_retained_bytes=datastore.replication.max_slot_retained
                if datastore
                else DEFAULT_MAX_SLOT_RETAINED,
                copy_targets=tuple(dict.fromkeys(t for p in policies for t in p.copy_to)),
                wal_interval_s=int(schedule_interval(wal[0].schedule).total_seconds()) if wal else None,
                allowed_regions=tuple(component.allowed_regions) if component.allowed_regions is not None else None,
                # Configuration after each change: the newest version per target against the live config.
                config_source=component.config.source() if component.config else None,
                config_targets=tuple(targets_params(spec, component.config.targets)) if component.config else (),
            )
        )
    return components


def rpo_report_plan(spec: Spec, source: str) -> DagPlan | None:
    settings = spec.reports.rpo_compliance
    components = rpo_components(spec)
    if not settings.enabled or not components or not spec.storage:
        return None
    target = spec.target(settings.target) if settings.target else spec.storage[0]
    task = TaskPlan(
        task_id="compute_rpo_compliance",
        action="report.rpo_compliance",
        doc="Measure, per component, the best recovery point available now (replica lag, newest archived WAL, "
        "newest backup; for a config, changes not stored yet), write the report to the store, and fail when a "
        "component is out of compliance.",
        params={
            "report": RpoReportRun(
                spec_name=spec.metadata.name,
                components=tuple(components),
                target=target.model_dump(mode="json"),
                notes_conn_id=spec.defaults.notes_conn_id,
            ).to_params()
        },
        retries=0,
    )
    objectives = "\n".join(
        f"- `{c.name}`: RPO {format_duration(c.rpo)}" for c in spec.components if c.datastore or c.snapshots or c.config
    )
    return DagPlan(
        dag_id=f"dr.{spec.metadata.name}.rpo-compliance",
        kind=KIND_REPORT,
        spec=spec.metadata.name,
        source=source,
        component=None,
        criticality=None,
        schedule=airflow_schedule(settings.schedule),
        description=f"RPO compliance of {spec.metadata.name} ({settings.schedule})",
        doc_md=f"# RPO compliance of `{spec.metadata.name}`\n\nThe recovery point each component could reach "
        f"right now, against its objective:\n\n{objectives}\n\nReports go to `{target.name}` "
        "under `<spec>/<component>/reports/rpo-compliance/`.",
        owner=spec.metadata.owner,
        retries=0,
        retry_delay_s=60,
        tasks=(task,),
    )
