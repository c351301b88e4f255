"""Celery queue routing: the spec's `queue` / `datastore_queue`, most specific first, rendered onto operators."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from drflow.operators.failover import ValidateSqlOperator
from drflow.plan.diff import diff_plans
from drflow.plan.graph import DagPlan
from drflow.render.airflow import render_dag
from drflow.spec.diagnostics import SpecError
from drflow.spec.load import load_spec_text
from tests.plan_inputs import plans, task_params

SPEC = """\
version: 1
metadata: {{name: shop, owner: platform-team}}
defaults: {{retries: 1{defaults}}}
regions:
  - {{name: us-east-1, role: primary}}
  - {{name: us-west-2}}
storage:
  - {{name: store, type: local, path: /var/backups/shop}}
components:
  - name: orders
    criticality: high
    rto: 15m
    rpo: 1h{orders}
    datastore:
      type: postgres
      database: orders
      primary: {{conn_id: pg_primary, region: us-east-1, data_directory: /var/lib/postgresql/15/main}}
      replicas: [{{name: replica-1, conn_id: pg_replica, region: us-west-2}}]
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "@hourly", targets: [store],
         retention: {{days: 7}}{policy}}}
      - {{name: nightly, type: full, method: pgbackrest, schedule: "@daily", targets: [store],
         retention: {{days: 7}}}}
    drills:
      - {{name: weekly, type: restore, schedule: "@weekly", policy: daily-full{drill}}}
  - name: billing
    criticality: medium
    rto: 1h
    rpo: 1d
    datastore:
      type: postgres
      database: billing
      primary: {{conn_id: pg_billing, region: us-east-1}}
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "@daily", targets: [store],
         retention: {{days: 7}}}}
recovery_plans:
  - name: failover
    scenario: infrastructure-failure
    status: approved
    components: [orders, billing]
    approval: {{approvers: [alice, bob]}}{plan}
    steps:
      - {{name: fence, action: fence, component: orders}}
      - {{name: promote, action: promote, component: orders, node: replica-1}}
      - {{name: tell, type: manual, assignees: [carol], instructions: Post it.}}
"""


def spec(defaults: str = "", orders: str = "", policy: str = "", drill: str = "", plan: str = "") -> dict[str, DagPlan]:
    text = SPEC.format(
        defaults=defaults,
        orders=f"\n    {orders}" if orders else "",
        policy=policy,
        drill=drill,
        plan=f"\n    {plan}" if plan else "",
    )
    return {p.dag_id: p for p in plans(text)}


def queues(dag: DagPlan) -> dict[str, str | None]:
    return {task.task_id: task.queue for task in dag.tasks}


BACKUP = "dr.shop.orders.backup.daily-full"
PGBACKREST = "dr.shop.orders.backup.nightly"
DRILL = "dr.shop.orders.drill.weekly"
PLAN = "dr.shop.plan.failover"
RETENTION = "dr.shop.retention"


def test_without_queues_every_task_stays_on_airflows_default_queue() -> None:
    dags = spec()
    assert {task.queue for dag in dags.values() for task in dag.tasks} == {None}
    operator = render_dag(dags[BACKUP]).get_task("take_backup")
    assert operator.queue == "default"  # Airflow's [operators] default_queue


def test_datastore_tasks_take_the_datastore_queue_and_the_rest_the_queue() -> None:
    dags = spec(defaults=", queue: drflow, datastore_queue: drflow-db")
    assert queues(dags[BACKUP]) == {"check_source": "drflow-db", "take_backup": "drflow-db", "verify_backup": "drflow"}
    assert set(queues(dags[PGBACKREST]).values()) == {"drflow-db"}  # pgBackRest runs on the database host
    assert set(queues(dags[DRILL]).values()) == {"drflow"}  # a drill restores from the store on a scratch server
    assert queues(dags[PLAN]) == {
        "assess-orders": "drflow-db",
        "assess-billing": "drflow-db",
        "declare": "drflow",
        "fence": "drflow-db",
        "promote": "drflow-db",
        "tell": "drflow",
        "record": "drflow",
    }
    # Retention runs `pgbackrest expire` on the host for a pgBackRest component only.
    assert queues(dags[RETENTION]) == {"expire_orders": "drflow-db", "expire_billing": "drflow"}
    assert render_dag(dags[BACKUP]).get_task("take_backup").queue == "drflow-db"
    assert render_dag(dags[BACKUP]).get_task("verify_backup").queue == "drflow"


def test_the_datastore_queue_alone_leaves_other_tasks_on_the_default_queue() -> None:
    dags = spec(defaults=", datastore_queue: drflow-db")
    assert queues(dags[BACKUP]) == {"check_source": "drflow-db", "take_backup": "drflow-db", "verify_backup": None}


def test_a_components_queues_win_over_the_defaults() -> None:
    dags = spec(defaults=", queue: drflow, datastore_queue: drflow-db", orders="queue: orders-workers")
    # The component's queue is more specific than defaults.datastore_queue, for its datastore tasks too.
    assert set(queues(dags[BACKUP]).values()) == {"orders-workers"}
    assert set(queues(dags["dr.shop.billing.backup.daily-full"]).values()) == {"drflow-db", "drflow"}
    plan = queues(spec(orders="datastore_queue: orders-db")[PLAN])
    assert (plan["fence"], plan["assess-orders"], plan["assess-billing"], plan["declare"]) == (
        "orders-db",
        "orders-db",
        None,
        None,
    )


def test_a_policy_drill_or_plan_queue_takes_every_task_of_its_dag() -> None:
    dags = spec(
        defaults=", queue: drflow, datastore_queue: drflow-db",
        policy=", queue: backups-east",
        drill=", queue: drills",
        plan="queue: incident",
    )
    assert set(queues(dags[BACKUP]).values()) == {"backups-east"}
    assert set(queues(dags[PGBACKREST]).values()) == {"drflow-db"}  # another policy keeps the defaults
    assert set(queues(dags[DRILL]).values()) == {"drills"}
    assert set(queues(dags[PLAN]).values()) == {"incident"}


def test_a_queue_change_shows_in_the_plan_diff() -> None:
    before, after = spec(), spec(defaults=", datastore_queue: drflow-db")
    changed = diff_plans(list(before.values()), list(after.values()))["changed"]
    assert "~ task take_backup.queue: None → 'drflow-db'" in changed[BACKUP]
    assert "verify_backup" not in " ".join(changed[BACKUP])


@pytest.mark.parametrize("value", ['"drflow db"', "-db", '"a/b"'])
def test_a_malformed_queue_name_says_what_a_queue_name_is(value: str) -> None:
    text = SPEC.format(defaults=f", datastore_queue: {value}", orders="", policy="", drill="", plan="")
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, Path("shop.yaml"))
    [error] = caught.value.errors
    assert (error.line, error.path) == (3, "defaults.datastore_queue")
    assert "is not a valid Celery queue name" in str(error) and "e.g. drflow-db" in str(error)


RESTORE_THEN_VALIDATE = """\
version: 1
metadata: {name: shop, owner: platform-team}
regions: [{name: us-east-1, role: primary}]
storage: [{name: store, type: local, path: /var/backups/shop}]
components:
  - name: orders
    criticality: high
    rto: 15m
    rpo: 1h
    datastore: {type: postgres, database: orders, primary: {conn_id: pg_primary, region: us-east-1}}
    backups:
      - {name: daily-full, type: full, method: pg_basebackup, schedule: "@hourly", targets: [store],
         retention: {days: 7}}
recovery_plans:
  - name: rollback
    scenario: data-corruption
    status: approved
    components: [orders]
    approval: {approvers: [alice, bob]}
    steps:
      - {name: restore-copy, action: restore, component: orders}
      - {name: check-copy, action: validate_sql, component: orders, node: restored,
         checks: [{name: rows, query: select count(*) from orders, expected: "3"}]}
"""


class RestoreXCom:
    def __init__(self, machine: str) -> None:
        self.machine = machine

    def xcom_pull(self, task_ids: str) -> Any:
        assert task_ids == "restore-copy"
        restored = {"host": "127.0.0.1", "machine": self.machine, "port": 55999, "dbname": "orders"}
        return {"step": task_ids, "restored": restored}


def test_validating_a_restored_server_on_another_machine_is_refused() -> None:
    params = task_params(RESTORE_THEN_VALIDATE, ".plan.rollback", "check-copy")
    operator = ValidateSqlOperator(task_id="check-copy", **params)
    here = socket.gethostname()
    assert operator.target_conn({"ti": RestoreXCom(here)}, "restored").port == 55999
    with pytest.raises(AirflowFailException) as refused:
        operator.target_conn({"ti": RestoreXCom("worker-b.example")}, "restored")
    assert f"runs on {here}, but restore step 'restore-copy' started the restored server on worker-b" in str(
        refused.value
    )
    assert "give the plan a `queue` that workers of one machine serve" in str(refused.value)


def test_validating_a_restored_server_goes_where_the_restore_step_goes() -> None:
    spec_text = RESTORE_THEN_VALIDATE.replace(
        "metadata: {name: shop, owner: platform-team}",
        "metadata: {name: shop, owner: platform-team}\ndefaults: {queue: drflow, datastore_queue: drflow-db}",
    )
    [dag] = [p for p in plans(spec_text) if p.dag_id == "dr.shop.plan.rollback"]
    assert queues(dag)["restore-copy"] == queues(dag)["check-copy"] == "drflow"
    assert queues(dag)["assess"] == "drflow-db"
