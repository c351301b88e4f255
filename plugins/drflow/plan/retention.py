"""The retention DAG of a spec (kind `retention`): expire, daily, what no retention rule keeps any more."""

from __future__ import annotations

from drflow.contracts import ConfigRetentionRun, PolicyRetention, RetentionRun
from drflow.engines.postgres.pgbackrest_config import stanza_settings
from drflow.plan.common import datastore_params, targets_params
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.spec.model import Component, Spec

KIND_RETENTION = "retention"
SCHEDULE = "30 4 * * *"
"""Daily at 04:30 UTC, after the preset's 02:00 full backups."""


def retention_run(spec: Spec, component: Component) -> RetentionRun:
    policies = component.backup_policies
    targets = list(dict.fromkeys(t for p in policies for t in p.targets))
    uses_pgbackrest = any(p.method == "pgbackrest" for p in policies)
    datastore = datastore_params(spec, component) if uses_pgbackrest else None
    config = component.config
    return RetentionRun(
        spec_name=spec.metadata.name,
        component=component.name,
        targets=targets_params(spec, targets),
        policies=tuple(PolicyRetention(p.name, p.retention.days, p.retention.min_copies) for p in policies),
        pgbackrest=stanza_settings(spec, component).to_params() if uses_pgbackrest else None,
        conn_id=datastore["conn_id"] if datastore else None,
        database=datastore["database"] if datastore else None,
        work_dir=spec.defaults.work_dir,
        snapshot_conn_id=component.snapshots.conn_id if component.snapshots is not None else None,
        config=ConfigRetentionRun(
            tuple(targets_params(spec, config.targets)), config.retention.days, config.retention.min_copies
        )
        if config is not None
        else None,
    )


def retention_plan(spec: Spec, source: str) -> DagPlan | None:
    components = [c for c in spec.components if c.backup_policies or c.config is not None]
    if not components:
        return None
    tasks = []
    for component in components:
        run = retention_run(spec, component)
        lines = ", ".join(f"{p.name} {p.days}d (min {p.min_copies} fulls)" for p in run.policies)
        stanza = "`pgbackrest expire` of every repository (each on its own), then " if run.pgbackrest else ""
        if run.snapshot_conn_id:
            lines += "; expired snapshot entries' AWS snapshots deleted in every region first"
        if run.config is not None:
            lines += f"; config versions older than {run.config.days}d pruned (min {run.config.min_copies})"
        tasks.append(
            TaskPlan(
                task_id=f"expire_{component.name}",
                action="store.expire",
                doc=f"{stanza}expire the catalog entries of `{component.name}` no rule keeps ({lines}), in every "
                "target on its own: never the newest valid full, never below min_copies, never what a kept "
                "entry depends on, never a pinned or locked entry. Manifest first, then the data.",
                params={"retention": run.to_params()},
                retries=1,
            )
        )
    return DagPlan(
        dag_id=f"dr.{spec.metadata.name}.retention",
        kind=KIND_RETENTION,
        spec=spec.metadata.name,
        source=source,
        component=None,
        criticality=None,
        schedule=SCHEDULE,
        description=f"Retention of {spec.metadata.name}: expire backups no rule keeps (daily)",
        doc_md=f"# Retention of `{spec.metadata.name}`\n\nDaily, per component and per storage target on its own: "
        "delete backups older than their policy's `days`, except the newest valid full, the newest `min_copies` "
        "valid fulls, what a kept entry depends on (its parents, the WAL a kept base replays), pinned entries "
        "(`drflow backups pin`) and locked ones (reported). The same as `drflow expire --spec "
        f"{source}`; see what it would do with `--dry-run`.",
        owner=spec.metadata.owner,
        retries=1,
        retry_delay_s=300,
        tasks=tuple(tasks),
    )
