"""Configuration DAGs (issue 9): a backup after each change, scheduled on an asset whose watcher
hashes the config; and the config restore drill."""

from __future__ import annotations

from drflow.contracts import ConfigRun
from drflow.contracts.drills import ConfigDrillRun
from drflow.plan.common import common_fields, dag_id, drill_facts, objectives, targets_params
from drflow.plan.graph import AssetWatch, DagPlan, TaskPlan
from drflow.spec.model import Component, Spec
from drflow.spec.types import airflow_schedule, format_duration

KIND_CONFIG_BACKUP = "config-backup"
KIND_CONFIG_DRILL = "config-drill"
CONFIG_TRIGGER = "drflow.triggers.config.ConfigChangeTrigger"
CONFIG_DRILL = "config"
"""The name of a config drill in its reports (a component has one at most)."""


def config_run(spec: Spec, component: Component) -> ConfigRun:
    settings = component.config
    assert settings is not None
    return ConfigRun(
        spec_name=spec.metadata.name,
        component=component.name,
        source=settings.source(),
        targets=tuple(targets_params(spec, settings.targets)),
        poll_interval_s=settings.poll_interval.total_seconds(),
        retention_days=settings.retention.days,
    )


def asset_name(spec: Spec, component: Component) -> str:
    return f"drflow.{spec.metadata.name}.{component.name}.config"


def config_plans(spec: Spec, component: Component, source: str) -> list[DagPlan]:
    settings = component.config
    if settings is None:
        return []
    run = config_run(spec, component)
    where = run.source.describe()
    interval = format_duration(settings.poll_interval)
    backup = TaskPlan(
        task_id="back_up_config",
        action="config.backup",
        doc=f"Read {where}, hash it and store it as a new version in "
        + ", ".join(settings.targets)
        + " unless a target's newest version has the same hash (identical content is never stored twice).",
        params={"config": run.to_params()},
    )
    plans = [
        DagPlan(
            dag_id=dag_id(spec, component, "backup", "config"),
            kind=KIND_CONFIG_BACKUP,
            schedule=None,
            watch=AssetWatch(
                asset=asset_name(spec, component),
                trigger=CONFIG_TRIGGER,
                kwargs={"source": run.source.to_params(), "poll_interval_s": run.poll_interval_s},
            ),
            description=f"config backup of {component.title} after each change (checked every {interval})",
            doc_md=f"# Configuration of {component.title}\n\n{objectives(component)}\n\n"
            f"The triggerer hashes {where} every {interval}; a changed hash updates the asset "
            f"`{asset_name(spec, component)}`, which runs this DAG. History without Airflow: "
            f"`drflow config history --spec {source} --component {component.name}`.",
            tasks=(backup,),
            **common_fields(spec, component, source),
        )
    ]
    if settings.drill is not None:
        drill = settings.drill
        task = TaskPlan(
            task_id="drill_config",
            action="config.drill",
            doc="Restore the newest config version into scratch, compare its hash"
            + (f", run `{drill.validate_command}` on it" if drill.validate_command else "")
            + "; the drill report (restore time against the RTO, changes not stored against the RPO) goes to "
            "the target restored from.",
            params={
                "drill": ConfigDrillRun(
                    config=run,
                    facts=drill_facts(spec, component, CONFIG_DRILL),
                    validate_command=drill.validate_command,
                    command_timeout_s=drill.timeout.total_seconds(),
                    work_dir=spec.defaults.work_dir,
                ).to_params()
            },
        )
        plans.append(
            DagPlan(
                dag_id=dag_id(spec, component, "drill", "config"),
                kind=KIND_CONFIG_DRILL,
                schedule=airflow_schedule(drill.schedule),
                description=f"config restore drill of {component.title} ({drill.schedule})",
                doc_md=f"# Config drill of {component.title}\n\n{objectives(component)}",
                tasks=(task,),
                **common_fields(spec, component, source),
            )
        )
    return plans
