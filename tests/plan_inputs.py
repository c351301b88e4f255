"""Operator inputs built the way a DAG gets them: a spec through the plan builders, never hand-written dicts.

Tests that run an operator outside a DAG take its task's params from here, so a key the operator needs
that no builder writes fails them as it would fail a real run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drflow.contracts import PlanFacts, RpoComponent, StepDefinition
from drflow.plan.build import build_plans
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.plan.report import rpo_components
from drflow.spec.load import load_spec_text

SHOP = """\
version: 1
metadata: {name: shop, owner: platform-team}
regions:
  - {name: us-east-1, role: primary}
  - {name: us-west-2}
components:
  - name: orders
    criticality: high
    rto: 15m
    rpo: 5m
    datastore:
      type: postgres
      database: orders
      primary: {conn_id: pg_primary, region: us-east-1}
      replicas:
        - {name: replica-1, conn_id: pg_replica, region: us-west-2, replication_conn_id: pg_replication}
recovery_plans:
  - name: failover
    scenario: infrastructure-failure
    status: approved
    components: [orders]
    approval: {approvers: [alice, bob], four_eyes: true, timeout: 15m}
    steps:
      - {name: fence, action: fence, component: orders, description: Stop writes on the primary.}
      - {name: go-live, type: approval, approvers: [alice, bob], four_eyes: true, instructions: Check it.}
      - {name: tell, type: manual, assignees: [carol], instructions: Post it., timeout: 1h}
      - {name: rebuild, action: rebuild_replica, component: orders, node: primary, source: replica-1}
"""
"""A one-component failover plan with a declaration, an automated step, an approval and a manual step."""


def plans(spec_text: str, source: str = "shop.yaml") -> list[DagPlan]:
    return build_plans(load_spec_text(spec_text, Path(source)).spec, source)


def recovery_dag(spec_text: str, plan: str, source: str = "shop.yaml") -> DagPlan:
    [dag] = [p for p in plans(spec_text, source) if p.dag_id.endswith(f".plan.{plan}")]
    return dag


def task_params(spec_text: str, dag_suffix: str, task_id: str, **step: Any) -> dict[str, Any]:
    """The params of one task of the DAG whose id ends with ``dag_suffix``; ``step`` overrides step fields."""
    [dag] = [p for p in plans(spec_text) if p.dag_id.endswith(dag_suffix)]
    task: TaskPlan = dag.task(task_id)
    params = dict(task.params)
    if step:
        params["step"] = {**params["step"], **step}
    return params


STEP_SPEC = """\
version: 1
metadata: {{name: {name}, owner: platform-team}}
regions: [{{name: us-east-1, role: primary}}, {{name: us-west-2}}]
components:
  - name: orders
    criticality: low
    rto: 15m
    rpo: 1h
    datastore:
      type: postgres
      database: orders
      primary: {{conn_id: pg_primary, region: us-east-1}}
{notifications}recovery_plans:
  - name: region-failover
    scenario: infrastructure-failure
    status: approved
    components: [orders]
    approval: {{approvers: [alice, bob]}}
    notify: {notify}
    steps:
      - {step}
"""


def step_params(
    step: dict[str, Any],
    *,
    spec_name: str = "shop",
    notifications: list[dict[str, Any]] | None = None,
    notify: list[str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The params of one step of plan `region-failover` whose only step is ``step`` (a spec step, as YAML
    would give it), as the plan builder writes them. ``notifications`` are the spec's channels, ``notify``
    the plan's; ``overrides`` then replace step fields, for inputs validation would refuse (to test an
    operator's own defences)."""
    channels = "notifications:\n" + "".join(f"  - {json.dumps(c)}\n" for c in notifications) if notifications else ""
    spec = STEP_SPEC.format(
        name=spec_name, notifications=channels, notify=json.dumps(notify or []), step=json.dumps(step)
    )
    return task_params(spec, ".plan.region-failover", str(step["name"]), **overrides)


def spec_head(spec_name: str, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """A spec's version, metadata, the regions its ``targets`` name (and us-east-1), and the targets."""
    regions = sorted({"us-east-1", *(str(t["region"]) for t in targets if t.get("region"))})
    return {
        "version": 1,
        "metadata": {"name": spec_name, "owner": "test"},
        "regions": [{"name": name} for name in regions],
        "storage": targets,
    }


def postgres_component(
    name: str,
    database: str,
    bin_dir: Path,
    targets: list[dict[str, Any]],
    *,
    conn_id: str = "pg_primary",
    replicas: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A PostgreSQL component (primary ``conn_id`` in us-east-1, ``replicas`` as the spec writes them) with a
    daily pg_basebackup into ``targets``."""
    return {
        "name": name,
        "criticality": "low",
        "rto": "1h",
        "rpo": "1d",
        "datastore": {
            "type": "postgres",
            "database": database,
            "bin_dir": str(bin_dir),
            "primary": {"conn_id": conn_id, "region": "us-east-1"},
            "replicas": replicas or [],
        },
        "backups": [
            {
                "name": "daily-full",
                "type": "full",
                "method": "pg_basebackup",
                "schedule": "@daily",
                "targets": [t["name"] for t in targets],
                "retention": {"days": 7},
            }
        ],
        **fields,
    }


def files_component(name: str, path: Path | str, targets: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A files component (the tree at ``path``) with a daily full backup (method files) into ``targets``."""
    return {
        "name": name,
        "criticality": "low",
        "rto": "1h",
        "rpo": "1d",
        "datastore": {"type": "files", "path": str(path)},
        "backups": [
            {
                "name": "daily-full",
                "type": "full",
                "method": "files",
                "schedule": "@daily",
                "targets": [t["name"] for t in targets],
                "retention": {"days": 7},
            }
        ],
        **fields,
    }


def restore_inputs(
    *,
    spec_name: str,
    component: str,
    database: str,
    bin_dir: Path,
    targets: list[dict[str, Any]],
    step: dict[str, Any],
    **overrides: Any,
) -> tuple[StepDefinition, PlanFacts]:
    """A restore step's definition and plan facts, as the builder writes them, for a component backed up
    into ``targets`` (storage entries as the spec writes them) with the binaries in ``bin_dir``."""
    spec = {
        **spec_head(spec_name, targets),
        "components": [postgres_component(component, database, bin_dir, targets)],
        "recovery_plans": [
            {
                "name": "restore-plan",
                "scenario": "security-incident",
                "status": "approved",
                "components": [component],
                "approval": {"approvers": ["alice", "bob"]},
                "steps": [{"action": "restore", "component": component, **step}],
            }
        ],
    }
    params = task_params(json.dumps(spec), ".plan.restore-plan", str(step["name"]), **overrides)
    return StepDefinition.from_params(params["step"]), PlanFacts.from_params(params["plan"])


def rpo_component(spec: dict[str, Any], component: str) -> RpoComponent:
    """``component`` of the spec (as the spec writes it) as the RPO report's builder hands it to the report."""
    loaded = load_spec_text(json.dumps(spec), Path(f"{spec['metadata']['name']}.yaml")).spec
    [facts] = [c for c in rpo_components(loaded) if c.name == component]
    return facts
