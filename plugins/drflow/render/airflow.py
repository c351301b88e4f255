"""Airflow renderer: DagPlans → airflow.sdk DAG objects. Thin on purpose; the logic lives in the plan."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, BaseOperator, Param, get_parsing_context

from drflow.plan.build import failed_plan
from drflow.plan.cache import PlanCache, default_cache
from drflow.plan.compile import compile_specs, plans_for_dag
from drflow.plan.graph import AssetWatch, DagPlan
from drflow.render.actions import operator_class
from drflow.spec.last_good import default_dir

log = logging.getLogger(__name__)


def render_dag(plan: DagPlan) -> DAG:
    default_args: dict[str, Any] = {
        "owner": plan.owner,
        "retries": plan.retries,
        "retry_delay": timedelta(seconds=plan.retry_delay_s),
    }
    dag_extras: dict[str, Any] = {}
    if plan.paused is not None:
        dag_extras["is_paused_upon_creation"] = plan.paused
    if plan.display_name:
        dag_extras["dag_display_name"] = plan.display_name
    if plan.notify is not None:
        from drflow.render.callbacks import completion_callbacks, deadline_alert, deadlines_enabled

        dag_extras.update(completion_callbacks(plan.notify))
        if plan.deadline_s and deadlines_enabled():
            dag_extras["deadline"] = deadline_alert(plan.notify, plan.deadline_s)
    schedule: Any = timedelta(seconds=plan.schedule_every_s) if plan.schedule_every_s else plan.schedule
    if plan.watch is not None:
        schedule = [watched_asset(plan.watch)]
    elif plan.skip_missed_slot and isinstance(schedule, str):
        schedule = next_slot_only(schedule)
    # No start date: a DAG that starts active first runs at its next slot (Airflow also runs a slot missed by
    # less than a tenth of the interval), not at once for the slot before it appeared (what a past start does).
    dag = DAG(
        dag_id=plan.dag_id,
        schedule=schedule,
        catchup=False,
        max_active_runs=plan.max_active_runs,
        tags=plan.tags,
        description=plan.description,
        doc_md=plan.doc_md,
        default_args=default_args,
        params={name: Param(**spec) for name, spec in plan.params.items()},
        **dag_extras,
    )
    operators: dict[str, BaseOperator] = {}
    with dag:
        for task in plan.tasks:
            overrides: dict[str, Any] = {"trigger_rule": task.trigger_rule}
            if task.retries is not None:
                overrides["retries"] = task.retries
            if task.retry_delay_s is not None:
                overrides["retry_delay"] = timedelta(seconds=task.retry_delay_s)
            if task.timeout_s is not None:
                overrides["execution_timeout"] = timedelta(seconds=task.timeout_s)
            if task.queue is not None:
                overrides["queue"] = task.queue
            if task.notify_on and plan.notify is not None:
                from drflow.notifiers import notifiers_for

                for when, event in task.notify_on.items():
                    if notifiers := notifiers_for(plan.notify, event):
                        overrides[f"on_{when}_callback"] = notifiers
            operators[task.task_id] = operator_class(task.action)(
                task_id=task.task_id, doc_md=task.doc, **overrides, **task.params
            )
            if task.teardown:
                operators[task.task_id].as_teardown()
        for task in plan.tasks:
            for upstream in task.upstream:
                operators[upstream] >> operators[task.task_id]
    return dag


def watched_asset(watch: AssetWatch) -> Asset:
    """The asset a DAG is scheduled on, with the watcher whose event trigger updates it."""
    module, _, name = watch.trigger.rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**watch.kwargs)
    return Asset(name=watch.asset, watchers=[AssetWatcher(name=f"{watch.asset}.watcher", trigger=trigger)])


def render_specs(paths: Iterable[Path | str], last_good: Path | None = None) -> dict[str, DAG]:
    """Every DAG of the specs. A DAG that cannot be built is replaced by one showing why; the rest load.

    With `last_good`, a spec that stops validating keeps the DAGs of its last good version, marked
    stale (see drflow.plan.compile.compile_specs).
    """
    return render_plans(compile_specs(paths, last_good))


def render_dag_file(
    paths: Iterable[Path | str], last_good: Path | None = None, cache: PlanCache | None = None
) -> dict[str, DAG]:
    """What a DAG file defines: every DAG of the specs, or, when Airflow parses the file to run a task
    (its parsing context names the DAG), only that DAG.

    `last_good` defaults to drflow.spec.last_good.default_dir() and `cache` to
    drflow.plan.cache.default_cache(): an unchanged spec file is not compiled again.
    """
    last_good = default_dir() if last_good is None else last_good
    cache = default_cache() if cache is None else cache
    wanted = get_parsing_context().dag_id
    if wanted:
        return render_plans(plans_for_dag(paths, wanted, last_good, cache))
    return render_plans(compile_specs(paths, last_good, cache))


def render_plans(plans: Iterable[DagPlan]) -> dict[str, DAG]:
    """The DAGs of `plans`; one that cannot be built is replaced by a DAG of its id saying why."""
    dags: dict[str, DAG] = {}
    for plan in plans:
        try:
            dags[plan.dag_id] = render_dag(plan)
        except Exception as exc:  # one bad DAG must never hide the others (an import error would)
            log.exception("drflow could not build DAG %s", plan.dag_id)
            dags[plan.dag_id] = render_dag(failed_plan(plan, f"{type(exc).__name__}: {exc}"))
    return dags


def next_slot_only(cron: str) -> Any:
    """A cron timetable whose first run is its next slot: a zero ``run_immediately`` never runs a missed one."""
    from airflow import settings
    from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

    return CronTriggerTimetable(cron, timezone=settings.TIMEZONE, run_immediately=timedelta(0))
