"""Pieces every DAG-kind builder shares: ids, tags, objectives, store and datastore parameters."""

from __future__ import annotations

from typing import Any

from drflow.contracts.drills import DrillFacts
from drflow.engines.postgres.bindir import datastore_bin_dir
from drflow.spec.model import Component, Spec
from drflow.spec.plans import ValidateAction
from drflow.spec.types import format_duration
from drflow.spec.validation import SqlCheck, needs_baseline


def dag_id(spec: Spec, component: Component, *parts: str) -> str:
    return ".".join(("dr", spec.metadata.name, component.name, *parts))


def targets_params(spec: Spec, names: list[str]) -> list[dict[str, Any]]:
    return [spec.target(name).model_dump(mode="json") for name in names]


def datastore_params(spec: Spec, component: Component) -> dict[str, Any]:
    datastore = component.postgres
    assert datastore is not None, "checks reject backups on a component without a datastore"
    return {
        "spec_name": spec.metadata.name,
        "component": component.name,
        "conn_id": datastore.primary.conn_id,
        "database": datastore.database,
        "bin_dir": str(datastore_bin_dir(datastore.bin_dir, datastore.version)),
        "pg_major": datastore.version,
    }


def common_fields(spec: Spec, component: Component, source: str) -> dict[str, Any]:
    return {
        "spec": spec.metadata.name,
        "source": source,
        "component": component.name,
        "criticality": component.criticality,
        "owner": component.owner or spec.metadata.owner,
        "retries": spec.defaults.retries,
        "retry_delay_s": int(spec.defaults.retry_delay.total_seconds()),
    }


def backup_id_param(description: str) -> dict[str, Any]:
    """The trigger form's optional ``backup_id`` field."""
    return {"default": None, "type": ["null", "string"], "title": "Backup id", "description": description}


def drill_facts(spec: Spec, component: Component, name: str) -> DrillFacts:
    """The drill ``name`` of ``component`` as its report names and judges it (its objectives in seconds)."""
    return DrillFacts(
        name=name,
        rto_s=int(component.rto.total_seconds()),
        rpo_s=int(component.rpo.total_seconds()),
        notes_conn_id=spec.defaults.notes_conn_id,
    )


def objectives(component: Component) -> str:
    return (
        f"**{component.title}** — criticality `{component.criticality}`, "
        f"RTO {format_duration(component.rto)}, RPO {format_duration(component.rpo)}."
    )


def validation_queries(component: Component, spec: Spec | None = None) -> list[dict[str, Any]]:
    """What a backup records for later comparison: the SQL checks of the component's drills (by name) and the
    typed checks that compare with the backup (checksums, row counts, pgbench baselines) of its drills and of
    the spec's plan steps that validate a restored copy of it."""
    queries: dict[str, dict[str, Any]] = {}
    typed: list[dict[str, Any]] = []
    suites = [list(drill.validation) for drill in component.drills]
    for plan in spec.recovery_plans if spec is not None else ():
        for step in plan.steps:
            if isinstance(step, ValidateAction) and step.component == component.name and step.node == "restored":
                suites.append([check for check in step.suite if needs_baseline(check)])
    for suite in suites:
        for check in suite:
            if isinstance(check, SqlCheck):
                queries.setdefault(check.name, check.model_dump(mode="json"))
            elif needs_baseline(check) and (entry := check.model_dump(mode="json")) not in typed:
                typed.append(entry)
    return [*queries.values(), *typed]
