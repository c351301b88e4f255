"""Pieces every DAG-kind builder shares: ids, tags, objectives, store and datastore parameters."""

from __future__ import annotations

from typing import Any

from drflow.engines.postgres.bindir import datastore_bin_dir
from drflow.spec.model import Component, Spec
from drflow.spec.types import format_duration


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


def objectives(component: Component) -> str:
    return (
        f"**{component.title}** — criticality `{component.criticality}`, "
        f"RTO {format_duration(component.rto)}, RPO {format_duration(component.rpo)}."
    )


def validation_queries(component: Component) -> list[dict[str, Any]]:
    """Every validation query of the component's drills, recorded at backup time for later comparison."""
    queries: dict[str, dict[str, Any]] = {}
    for drill in component.drills:
        for check in drill.validation:
            queries.setdefault(check.name, check.model_dump(mode="json"))
    return list(queries.values())
