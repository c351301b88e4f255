"""The DR metrics of a spec: what `drflow report` and the dashboard read, and the `dr.<spec>.metrics` DAG."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from drflow.contracts.metrics import DrillFacts, MetricsComponent, MetricsRun, SourceFacts
from drflow.plan.common import dag_id, targets_params
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.plan.recovery import plan_dag_id
from drflow.spec.exercises import ExerciseSchedule
from drflow.spec.model import Component, Spec
from drflow.spec.types import format_duration, schedule_interval

KIND_METRICS = "metrics"
METRICS_SCHEDULE = "@hourly"
PERIOD = timedelta(days=90)
SOURCE_KINDS = {
    "pg_basebackup": "database",
    "pg_receivewal": "wal",
    "pgbackrest": "pgbackrest",
    "pg_dump": "dump",
    "files": "files",
    "snapshot": "snapshot",
}


def _sources(spec: Spec, component: Component) -> tuple[SourceFacts, ...]:
    sources = [
        SourceFacts(
            name=policy.name,
            kind=SOURCE_KINDS.get(policy.method, policy.method),
            interval_s=int(schedule_interval(policy.schedule).total_seconds()),
            targets=tuple(dict.fromkeys([*policy.targets, *policy.copy_to])),
            dag_id=dag_id(spec, component, "backup", policy.name),
        )
        for policy in component.backup_policies
    ]
    if component.config is not None:
        sources.append(
            SourceFacts(
                "config", "config", None, tuple(component.config.targets), dag_id(spec, component, "backup", "config")
            )
        )
    return tuple(sources)


def _drills(spec: Spec, component: Component) -> tuple[DrillFacts, ...]:
    drills = [
        DrillFacts(d.name, int(schedule_interval(d.schedule).total_seconds()), dag_id(spec, component, "drill", d.name))
        for d in component.drills
    ]
    if component.config is not None and component.config.drill is not None:
        interval = int(schedule_interval(component.config.drill.schedule).total_seconds())
        drills.append(DrillFacts("config", interval, dag_id(spec, component, "drill", "config")))
    return tuple(drills)


def metrics_component(spec: Spec, component: Component) -> MetricsComponent:
    sources = _sources(spec, component)
    return MetricsComponent(
        name=component.name,
        title=component.title,
        criticality=component.criticality,
        rto_s=int(component.rto.total_seconds()),
        rpo_s=int(component.rpo.total_seconds()),
        sources=sources,
        drills=_drills(spec, component),
        targets=tuple(dict.fromkeys(t for s in sources for t in s.targets)),
        plans=tuple(plan_dag_id(spec, p) for p in spec.recovery_plans if component.name in p.components),
    )


def metrics_run(
    spec: Spec, exercises: Sequence[ExerciseSchedule] | None = None, period: timedelta = PERIOD
) -> MetricsRun:
    """The metrics of ``spec``; ``exercises``: the exercise program's (name, schedule) pairs, for completion
    (default: the spec's `exercises:`, paused ones not being due)."""
    if exercises is None:
        exercises = [s for s in spec.exercise_schedules() if not s.paused]
    rpo = spec.reports.rpo_compliance
    report_target = rpo.target or (spec.storage[0].name if spec.storage else None)
    rpo_enabled = rpo.enabled and bool(spec.storage)
    return MetricsRun(
        spec_name=spec.metadata.name,
        components=tuple(metrics_component(spec, c) for c in spec.components),
        targets=tuple(targets_params(spec, [t.name for t in spec.storage])),
        report_target=report_target,
        period_s=int(period.total_seconds()),
        rpo_report_interval_s=int(schedule_interval(rpo.schedule).total_seconds()) if rpo_enabled else None,
        rpo_report_dag_id=f"dr.{spec.metadata.name}.rpo-compliance" if rpo_enabled else None,
        exercises=tuple(exercises),
    )


def metrics_plan(spec: Spec, source: str) -> DagPlan | None:
    """Hourly: compute the metrics, keep the snapshot in the store, send them to StatsD."""
    if not spec.storage:
        return None
    run = metrics_run(spec)
    task = TaskPlan(
        task_id="compute_metrics",
        action="report.metrics",
        doc="Read drills, exercises, recovery records, the catalogs and the newest RPO report from the store (each "
        "target on its own), compute the DR metrics per component and for the spec, store the snapshot under "
        "`<spec>/<component>/reports/metrics/` and send the gauges `drflow.<spec>.…` to StatsD.",
        params={"metrics": run.to_params()},
        retries=0,
    )
    names = "\n".join(
        f"- `{c.name}`: RTO {format_duration(c.rto)}, RPO {format_duration(c.rpo)}" for c in spec.components
    )
    return DagPlan(
        dag_id=f"dr.{spec.metadata.name}.metrics",
        kind=KIND_METRICS,
        spec=spec.metadata.name,
        source=source,
        component=None,
        criticality=None,
        schedule=METRICS_SCHEDULE,
        description=f"DR metrics of {spec.metadata.name} ({METRICS_SCHEDULE})",
        doc_md=f"# DR metrics of `{spec.metadata.name}`\n\nActual RTO and RPO against the objectives, recovery, "
        f"validation and exercise completion rates, mean time to recovery and backup ages, over the last "
        f"{format_duration(PERIOD)}:\n\n{names}\n\nSnapshots go to `{run.report_target}`; `drflow report --spec "
        f"{source}` prints the same figures.",
        owner=spec.metadata.owner,
        retries=0,
        retry_delay_s=60,
        tasks=(task,),
    )
