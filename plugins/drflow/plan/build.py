"""Builders: a validated spec → DagPlans, one per backup policy and per drill of each component."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from drflow.plan.graph import DagPlan, TaskPlan
from drflow.spec.model import BackupPolicy, Component, Drill, Spec
from drflow.spec.types import airflow_schedule, format_duration

KIND_BACKUP = "backup"
KIND_RESTORE_DRILL = "restore-drill"
KIND_SPEC_ERROR = "spec-error"


def dag_id(spec: Spec, component: Component, *parts: str) -> str:
    return ".".join(("dr", spec.metadata.name, component.name, *parts))


def build_plans(spec: Spec, source: Path | str) -> list[DagPlan]:
    plans: list[DagPlan] = []
    for component in spec.components:
        for policy in component.backups:
            plans.append(_backup_plan(spec, component, policy, str(source)))
        for drill in component.drills:
            plans.append(_drill_plan(spec, component, drill, str(source)))
    return plans


def error_plan(source: Path | str, errors: list[str]) -> DagPlan:
    """A placeholder DAG that shows a broken spec in the Airflow UI instead of hiding it in a log."""
    stem = re.sub(r"[^a-z0-9-]+", "-", Path(source).stem.lower()).strip("-") or "spec"
    listing = "\n".join(f"- `{line}`" for line in errors)
    doc = (
        f"# Spec `{source}` does not validate\n\n"
        "None of this spec's DAGs are loaded until it is fixed. Other specs are not affected.\n\n"
        f"{listing}\n\nFix the file, then check it with `drflow validate {source}`."
    )
    task = TaskPlan(
        task_id="spec_is_invalid",
        action="spec.invalid",
        doc="Fails with the validation errors of the spec.",
        params={"source": str(source), "errors": errors},
        retries=0,
    )
    return DagPlan(
        dag_id=f"dr.{stem}.spec-error",
        kind=KIND_SPEC_ERROR,
        spec=stem,
        source=str(source),
        component=None,
        criticality=None,
        schedule=None,
        description=f"INVALID SPEC: {errors[0] if errors else source}"[:200],
        doc_md=doc,
        owner="drflow",
        retries=0,
        retry_delay_s=60,
        tasks=(task,),
        error=errors[0] if errors else "invalid spec",
    )


def _targets(spec: Spec, names: list[str]) -> list[dict[str, Any]]:
    return [spec.target(name).model_dump(mode="json") for name in names]


def _datastore_params(spec: Spec, component: Component) -> dict[str, Any]:
    datastore = component.datastore
    assert datastore is not None, "checks reject backups on a component without a datastore"
    return {
        "spec_name": spec.metadata.name,
        "component": component.name,
        "conn_id": datastore.primary.conn_id,
        "database": datastore.database,
        "bin_dir": datastore.binaries,
        "pg_major": datastore.version,
    }


def _common(spec: Spec, component: Component, source: str) -> dict[str, Any]:
    return {
        "spec": spec.metadata.name,
        "source": source,
        "component": component.name,
        "criticality": component.criticality,
        "owner": component.owner or spec.metadata.owner,
        "retries": spec.defaults.retries,
        "retry_delay_s": int(spec.defaults.retry_delay.total_seconds()),
    }


def _objectives(component: Component) -> str:
    return (
        f"**{component.title}** — criticality `{component.criticality}`, "
        f"RTO {format_duration(component.rto)}, RPO {format_duration(component.rpo)}."
    )


def _validation_queries(component: Component) -> list[dict[str, Any]]:
    """Every validation query of the component's drills, recorded at backup time for later comparison."""
    queries: dict[str, dict[str, Any]] = {}
    for drill in component.drills:
        for check in drill.validation:
            queries.setdefault(check.name, check.model_dump(mode="json"))
    return list(queries.values())


def _backup_plan(spec: Spec, component: Component, policy: BackupPolicy, source: str) -> DagPlan:
    base = _datastore_params(spec, component)
    retries = policy.retries if policy.retries is not None else spec.defaults.retries
    retry_delay = policy.retry_delay or spec.defaults.retry_delay
    targets = _targets(spec, policy.targets)
    check = TaskPlan(
        task_id="check_source",
        action="postgres.check_source",
        doc="Connect to the primary and check it is reachable, of the expected major version and allowed "
        "to stream a base backup.",
        params={"conn_id": base["conn_id"], "database": base["database"], "pg_major": base["pg_major"]},
        retries=retries,
        retry_delay_s=int(retry_delay.total_seconds()),
    )
    take = TaskPlan(
        task_id="take_backup",
        action="postgres.full_backup",
        doc=f"`pg_basebackup` of the primary ({policy.compression}, WAL included) into "
        + ", ".join(t["name"] for t in targets)
        + "; every object checksummed; the manifest is written last.",
        params={
            **base,
            "policy": policy.name,
            "targets": targets,
            "compression": policy.compression,
            "retention_days": policy.retention.days,
            "retention_policy": policy.retention.policy,
            "validation": _validation_queries(component),
            "work_dir": spec.defaults.work_dir,
        },
        upstream=("check_source",),
        retries=retries,
        retry_delay_s=int(retry_delay.total_seconds()),
        timeout_s=int(policy.timeout.total_seconds()) if policy.timeout else None,
    )
    verify = TaskPlan(
        task_id="verify_backup",
        action="store.verify_backup",
        doc="Read the new backup back from every target and check every object's size and sha256.",
        params={"spec_name": spec.metadata.name, "component": component.name, "targets": targets},
        upstream=("take_backup",),
        retries=retries,
        retry_delay_s=int(retry_delay.total_seconds()),
    )
    doc = (
        f"# Backup `{policy.name}` of {component.title}\n\n{_objectives(component)}\n\n"
        f"- type `{policy.type}`, method `{policy.method}`, schedule `{policy.schedule}`\n"
        f"- targets: {', '.join(policy.targets)}; retention {policy.retention.days} days "
        f"({policy.retention.policy})\n\n"
        f"Spec: `{source}`. Restore without Airflow: "
        f"`drflow restore --spec {source} --component {component.name} --to DIR`."
    )
    return DagPlan(
        dag_id=dag_id(spec, component, "backup", policy.name),
        kind=KIND_BACKUP,
        schedule=airflow_schedule(policy.schedule),
        description=f"{policy.type} backup of {component.title} ({policy.schedule})",
        doc_md=doc,
        tasks=(check, take, verify),
        **{
            **_common(spec, component, source),
            "retries": retries,
            "retry_delay_s": int(retry_delay.total_seconds()),
        },
    )


def _drill_plan(spec: Spec, component: Component, drill: Drill, source: str) -> DagPlan:
    base = _datastore_params(spec, component)
    policy_name = drill.policy
    target_name = drill.target
    if target_name is None:
        policies = [p for p in component.backups if policy_name in (None, p.name)]
        target_name = policies[0].targets[0]
    target = spec.target(target_name).model_dump(mode="json")
    store_params = {"spec_name": spec.metadata.name, "component": component.name, "target": target}
    select = TaskPlan(
        task_id="select_backup",
        action="store.select_backup",
        doc="Pick the newest complete backup"
        + (f" of policy `{policy_name}`" if policy_name else "")
        + f" in `{target_name}` (or the one given in the trigger form).",
        params={**store_params, "policy": policy_name},
    )
    restore = TaskPlan(
        task_id="restore_and_validate",
        action="postgres.restore_drill",
        doc="Verify checksums, restore into a scratch instance on a free port, start it, run the validation "
        "queries and compare them with the values recorded at backup time; the scratch instance is always "
        "torn down.",
        params={
            **store_params,
            "database": base["database"],
            "bin_dir": base["bin_dir"],
            "validation": [v.model_dump(mode="json") for v in drill.validation],
            "work_dir": spec.defaults.work_dir,
        },
        upstream=("select_backup",),
        timeout_s=int(drill.timeout.total_seconds()) if drill.timeout else None,
    )
    report = TaskPlan(
        task_id="record_report",
        action="report.drill",
        doc="Write the drill report (restore time against the RTO, backup age against the RPO, validation "
        "results) to the store; fail if the drill missed an objective or a check.",
        params={
            **store_params,
            "drill": drill.name,
            "rto_s": int(component.rto.total_seconds()),
            "rpo_s": int(component.rpo.total_seconds()),
        },
        upstream=("restore_and_validate",),
        retries=1,
    )
    doc = (
        f"# Restore drill `{drill.name}` of {component.title}\n\n{_objectives(component)}\n\n"
        f"Restores the newest backup from `{target_name}` into a scratch PostgreSQL, runs "
        f"{len(drill.validation)} validation queries and records the measured restore time against the RTO.\n\n"
        f"Schedule `{drill.schedule}`. Spec: `{source}`."
    )
    return DagPlan(
        dag_id=dag_id(spec, component, "drill", drill.name),
        kind=KIND_RESTORE_DRILL,
        schedule=airflow_schedule(drill.schedule),
        description=f"restore drill of {component.title} ({drill.schedule})",
        doc_md=doc,
        tasks=(select, restore, report),
        params={
            "backup_id": {
                "default": None,
                "type": ["null", "string"],
                "description": "Backup to restore; empty means the newest complete one.",
            }
        },
        **_common(spec, component, source),
    )
