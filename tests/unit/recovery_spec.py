"""The small spec the recovery-plan tests share, and how they load it and read its findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drflow.spec.diagnostics import Diagnostic, SpecError
from drflow.spec.load import load_spec_text

EXAMPLE = Path(__file__).resolve().parents[2] / "plan_specs" / "api-marketplace.yaml"

SPEC = """\
version: 1
metadata: {name: shop, owner: platform-team}
regions:
  - {name: us-east-1, role: primary}
  - {name: us-west-2}
storage:
  - {name: local-a, type: local, path: /tmp/drflow-unit-store, region: us-east-1}
components:
  - name: orders
    criticality: high
    rto: 1h
    rpo: 10m
    datastore:
      type: postgres
      database: orders
      primary: {conn_id: pg_primary, region: us-east-1}
      replicas:
        - {name: replica-1, conn_id: pg_replica, region: us-west-2, slot: replica_1}
    backups:
      - {name: daily-full, type: full, method: pg_basebackup, schedule: "0 2 * * *", targets: [local-a],
         retention: {days: 7}}
    drills:
      - {name: weekly, type: restore, schedule: "@weekly"}
  - name: users
    criticality: critical
    rto: 30m
    rpo: 5m
    datastore:
      type: postgres
      database: users
      primary: {conn_id: pg_primary, region: us-east-1}
    drills: []
notifications:
  - {name: ops, type: webhook, conn_id: ops_hook, events: [activation, step-failed]}
recovery_plans:
  - name: failover
    scenario: infrastructure-failure
    status: approved
    components: [orders]
    primary_region: us-east-1
    recovery_region: us-west-2
    approval: {approvers: [bob, carol]}
    notify: [ops]
    steps:
      - {name: gate, action: gate_lag, component: orders, node: replica-1, timeout: 2m}
      - {name: fence, action: fence, component: orders}
      - {name: promote, action: promote, component: orders, node: replica-1}
      - {name: check, action: validate_sql, component: orders, node: replica-1,
         checks: [{name: writable, query: select not pg_is_in_recovery(), expected: "true"}]}
      - name: tell
        type: manual
        assignees: [alice]
        instructions: Tell the customers.
        depends_on: [promote]
"""


def load(text: str, tmp_path: Path) -> Any:
    return load_spec_text(text, tmp_path / "shop.yaml")


def diagnostics(text: str, tmp_path: Path) -> list[Diagnostic]:
    try:
        return load(text, tmp_path).warnings
    except SpecError as exc:
        return exc.diagnostics


def messages(text: str, tmp_path: Path, severity: str = "error") -> list[str]:
    return [f"{d.line}: {d.message}; {d.hint}" for d in diagnostics(text, tmp_path) if d.severity == severity]


def with_plan(steps: str, *, approval: str = "{approvers: [bob, carol]}", components: str = "[orders]") -> str:
    head = SPEC.split("recovery_plans:")[0]
    return (
        head
        + "recovery_plans:\n  - name: p\n    scenario: data-corruption\n    status: approved\n"
        + f"    components: {components}\n    approval: {approval}\n    steps:\n"
        + "".join(f"      - {line}\n" for line in steps.strip().splitlines())
    )
