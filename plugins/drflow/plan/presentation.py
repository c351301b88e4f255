"""How a DAG shows in the Airflow UI: the name people search for, and whether it starts active.

Airflow's DAG search matches display names from their start, so every name starts with what people look
for: the component (`User Database · backup daily-full`), the plan (`Region failover (plan)`) or the spec
(`API Marketplace · RPO compliance`). DAG ids never change.

What starts active: every DAG that protects on a schedule or an event (backups, drills, watches, retention,
reports) — they were reviewed with the spec; plans and restores have no schedule and run only when a person
triggers them, so they start active too (no "unpause" step in an incident). `paused: true` on a backup
policy or drill, a component or the spec's `defaults` keeps its DAGs paused; the nearest one set wins.
"""

from __future__ import annotations

from dataclasses import replace

from drflow.plan.graph import DagPlan
from drflow.spec.model import BackupPolicy, Component, Drill, Spec

KIND_LABELS = {
    "backup": "backup",
    "restore-drill": "drill",
    "restore": "restore",
    "replication-watch": "replication watch",
    "config-backup": "config backup",
    "config-drill": "config drill",
    "report": "RPO compliance",
    "metrics": "DR metrics",
    "retention": "retention",
}


def spec_title(spec: Spec) -> str:
    return spec.metadata.display_name or spec.metadata.name


def plan_title(name: str) -> str:
    """`region-failover` → `Region failover`."""
    words = name.replace("_", "-").split("-")
    return " ".join([words[0].capitalize(), *words[1:]])


def display_name(plan: DagPlan, spec: Spec, component: Component | None, item: BackupPolicy | Drill | None) -> str:
    label = KIND_LABELS.get(plan.kind, plan.kind)
    if item is not None:
        label = f"{label} {item.name}"
    if component is not None:
        return f"{component.title} · {label}"
    return f"{spec_title(spec)} · {label}"


def starts_paused(spec: Spec, component: Component | None = None, item: BackupPolicy | Drill | None = None) -> bool:
    """The nearest `paused` the spec sets (policy or drill, component, defaults); active when none is set."""
    for level in (item, component):
        if level is not None and level.paused is not None:
            return level.paused
    return spec.defaults.paused


def presented(
    plan: DagPlan,
    spec: Spec,
    component: Component | None = None,
    item: BackupPolicy | Drill | None = None,
) -> DagPlan:
    """The plan with its display name and its paused-at-creation flag (a builder's own `paused` stays)."""
    paused = plan.paused if plan.paused is not None else starts_paused(spec, component, item)
    name = plan.display_name or display_name(plan, spec, component, item)
    return replace(plan, display_name=name, paused=paused)
