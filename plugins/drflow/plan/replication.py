"""Replication-watch DAGs: one per component with replicas (kind `replication-watch`)."""

from __future__ import annotations

from drflow.engines.postgres.replication_watch import ReplicationWatch, WatchedReplica
from drflow.plan.common import common_fields, dag_id, objectives
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.spec.model import Component, Spec
from drflow.spec.slots import slot_watch
from drflow.spec.types import format_duration, format_size

KIND_REPLICATION_WATCH = "replication-watch"


def poke_interval_s(interval_s: int) -> int:
    """How often a deferred check re-measures: six times per interval, between 1 s and 30 s."""
    return max(1, min(30, interval_s // 6))


def replication_watch_plan(spec: Spec, component: Component, source: str) -> DagPlan | None:
    datastore = component.postgres
    if datastore is None or not datastore.replicas or not datastore.replication.enabled:
        return None
    watch = datastore.replication
    interval_s = int(watch.interval.total_seconds())
    max_lag = watch.max_lag or component.rpo
    replicas = tuple(WatchedReplica(r.name, r.conn_id, r.slot) for r in datastore.replicas)
    check = TaskPlan(
        task_id="check_replication",
        action="postgres.replication_lag",
        doc="Measure each replica's lag (bytes and seconds) and look for faults: unreachable, not streaming, "
        "replay paused, promoted (split-brain risk), replication slot missing, inactive or retaining too much "
        "WAL; the spec's WAL archiving slots and orphaned drflow slots on the primary against "
        "datastore.slot_retention_limit. On a critical alert, wait (deferred) up to one interval for recovery, "
        "then fail with every alert.",
        params={
            "watch": ReplicationWatch(
                primary_conn_id=datastore.primary.conn_id,
                database=datastore.database,
                replicas=replicas,
                warn_lag_s=int(watch.warn_lag.total_seconds()),
                max_lag_s=int(max_lag.total_seconds()),
                max_slot_retained_bytes=watch.max_slot_retained,
                slot_watch=slot_watch(spec, component, source),
                synchronous=component.replication_mode == "synchronous",
            ).to_params(),
            "poke_interval": poke_interval_s(interval_s),
            "timeout": interval_s,
        },
        retries=0,
    )
    listing = "\n".join(
        f"- `{r.name}` (`{r.conn_id}`, {r.region})" + (f", slot `{r.slot}`" if r.slot else "")
        for r in datastore.replicas
    )
    doc = (
        f"# Replication watch of {component.title}\n\n{objectives(component)}\n\n"
        f"Every {format_duration(watch.interval)}: lag of each replica of `{datastore.database}` against the "
        f"primary `{datastore.primary.conn_id}`; warning above {format_duration(watch.warn_lag)}, failure above "
        f"{format_duration(max_lag)}" + ("" if watch.max_lag else " (the RPO)") + "; a slot may hold back at most "
        f"{format_size(watch.max_slot_retained)} of WAL.\n\n{listing}\n\n"
        f"{_sync_doc(component)}"
        "A failed run names each fault and what to do. Runs are not retried: the next interval is the retry. "
        f"Spec: `{source}`."
    )
    return DagPlan(
        dag_id=dag_id(spec, component, "replication-watch"),
        kind=KIND_REPLICATION_WATCH,
        schedule=None,
        schedule_every_s=interval_s,
        description=f"replication lag of {component.title} (every {format_duration(watch.interval)})",
        doc_md=doc,
        tasks=(check,),
        max_active_runs=1,
        **{**common_fields(spec, component, source), "retries": 0},
    )


def _sync_doc(component: Component) -> str:
    if component.replication_mode != "synchronous":
        return ""
    why = "`mode: synchronous`" if component.postgres and component.postgres.replication.mode else "critical data"
    return (
        f"Replication must be **synchronous** ({why}): an alert when the primary falls back to asynchronous "
        "or has no synchronous standby.\n\n"
    )
