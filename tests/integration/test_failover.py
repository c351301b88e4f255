"""Failover and failback against real PostgreSQL 15 primaries and streaming replicas.

The lag gate, the split-brain guard, fencing, promotion, and rebuilding the old primary as a
replica of the new one (pg_rewind, and the fresh-clone fallback), then switching back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from drflow.engines.postgres.cluster import LocalCluster, free_port
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.failover import gate_lag, promote
from drflow.engines.postgres.fence import fence
from drflow.engines.postgres.node import Node, accepts_writes, node_health
from drflow.engines.postgres.rebuild import RebuildError, rebuild_replica, wait_caught_up
from drflow.engines.postgres.refusal import LagExceeded, ReplayPaused, SplitBrainRisk

pytestmark = pytest.mark.slow  # every test starts a primary and a streaming replica (3 s and more)


REPLICATOR = "replicator"


def as_node(cluster: LocalCluster, name: str) -> Node:
    return Node(
        name=name, conn=cluster.conninfo(), data_dir=cluster.data_dir, host=cluster.host, bin_dir=cluster.bin_dir
    )


def replication_conn(cluster: LocalCluster) -> PgConnInfo:
    """The spec's replication role on a test cluster (trust auth: no password)."""
    return PgConnInfo(host="127.0.0.1", port=cluster.port, user=REPLICATOR)


def streams_as(cluster: LocalCluster) -> tuple[str, str | None]:
    """The rebuilt standby's primary_conninfo setting and the user its WAL receiver connected as."""
    from psycopg.conninfo import conninfo_to_dict

    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
        setting = conn.execute("show primary_conninfo").fetchone()
        receiver = conn.execute("select status, conninfo from pg_stat_wal_receiver").fetchone()
    assert setting is not None and receiver is not None and receiver[0] == "streaming", receiver
    user = conninfo_to_dict(str(receiver[1])).get("user")
    return str(setting[0]), None if user is None else str(user)


def run(cluster: LocalCluster, sql: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute(sql, params)


def ids(cluster: LocalCluster) -> list[int]:
    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
        return [row[0] for row in conn.execute("select id from rows order by id").fetchall()]


def insert(cluster: LocalCluster, first: int, last: int, phase: str) -> None:
    run(cluster, "insert into rows select g, %s from generate_series(%s::int, %s::int) g", (phase, first, last))


def in_recovery(cluster: LocalCluster) -> bool:
    return bool(node_health(cluster.conninfo())["in_recovery"])


def test_lag_gate_refuses_while_replay_is_paused(pg_primary_with_replica: tuple[LocalCluster, LocalCluster]) -> None:
    primary, replica = pg_primary_with_replica
    run(primary, "create table rows (id int primary key, phase text)")
    wait_caught_up(primary.conninfo(), as_node(replica, "replica"), 30)
    passed = gate_lag(primary.conninfo(), as_node(replica, "replica"), 60)
    assert passed["lag_s"] == 0.0 and passed["upper_bound"] is False

    run(replica, "select pg_wal_replay_pause()")
    insert(primary, 1, 10, "after pause")
    with pytest.raises(ReplayPaused) as refused:
        gate_lag(primary.conninfo(), as_node(replica, "replica"), 60)
    message = str(refused.value)
    assert message.startswith("refused: WAL replay is paused on replica")
    assert "to proceed:" in message and "SELECT pg_wal_replay_resume();" in message
    # promote runs the same gate: refused, and the replica is left as it was
    with pytest.raises(ReplayPaused):
        promote(as_node(replica, "replica"), fence_node=None, primary=primary.conninfo(), max_lag_s=60)
    assert in_recovery(replica)

    run(replica, "select pg_wal_replay_resume()")
    resumed = gate_lag(primary.conninfo(), as_node(replica, "replica"), 60, settle_s=5)
    assert resumed["lag_bytes"] is not None and resumed["lag_s"] <= 5

    # Primary unreachable: the age of the last replayed commit is only an upper bound, and says so.
    gone = PgConnInfo(host="127.0.0.1", port=free_port(), user="postgres")
    with pytest.raises(LagExceeded) as exceeded:
        gate_lag(gone, as_node(replica, "replica"), 0.0)
    assert "at most" in str(exceeded.value) and "upper bound" in str(exceeded.value)


def test_split_brain_guard_refuses_while_old_primary_accepts_writes(
    pg_primary_with_replica: tuple[LocalCluster, LocalCluster],
) -> None:
    primary, replica = pg_primary_with_replica
    old, new = as_node(primary, "primary"), as_node(replica, "replica")
    assert accepts_writes(old)
    with pytest.raises(SplitBrainRisk) as refused:
        promote(new, fence_node=old, max_lag_s=60)
    assert "still accepts writes" in str(refused.value) and "to proceed: fence primary first" in str(refused.value)
    assert in_recovery(replica)

    # An old primary nobody can reach, whose host cannot be asked, is a risk too.
    ghost = Node(name="ghost", conn=PgConnInfo(host="127.0.0.1", port=free_port(), user="postgres"))
    assert not accepts_writes(ghost)
    with pytest.raises(SplitBrainRisk) as unknown:
        promote(new, fence_node=ghost, primary=old, max_lag_s=60)
    assert "nobody can tell" in str(unknown.value)
    assert in_recovery(replica)

    with psycopg.connect(**primary.conninfo().libpq_kwargs(), autocommit=True) as app_session:
        fenced = fence(old, "read-only")
        assert fenced["terminated_backends"] >= 1 and fenced["state"]["state"] == "read-only"
        with pytest.raises(psycopg.OperationalError):
            app_session.execute("select 1")
    assert not accepts_writes(old)

    promoted = promote(new, fence_node=old, max_lag_s=60)
    assert promoted["timeline"] == 2 and promoted["guards"]["fence"]["state"] == "read-only"
    assert accepts_writes(new) and not in_recovery(replica)
    with (
        psycopg.connect(**primary.conninfo().libpq_kwargs(), autocommit=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("create table after_failover (id int)")
    # A retry of the promotion step finds the work done.
    assert promote(new, fence_node=old, max_lag_s=60)["already_promoted"] is True


def test_failback_via_pg_rewind_loses_no_committed_row(
    pg_primary_with_replica: tuple[LocalCluster, LocalCluster],
) -> None:
    primary, replica = pg_primary_with_replica
    old, new = as_node(primary, "primary"), as_node(replica, "replica")
    run(primary, f"create role {REPLICATOR} with login replication")  # reaches the replica through WAL
    run(primary, "create table rows (id int primary key, phase text)")
    insert(primary, 1, 100, "before failover")

    fence(old, "read-only")
    promote(new, fence_node=old, max_lag_s=60)
    run(primary, "checkpoint")  # the old primary's WAL goes on past the fork: pg_rewind has work to do
    insert(replica, 101, 200, "after failover")

    # The spec's replication role, never drflow's admin (issue 7, item 10): the admin user is refused.
    with pytest.raises(RebuildError, match="logs in as postgres, drflow's own admin user"):
        rebuild_replica(old, replica.conninfo(), replication=replica.conninfo(), slot="failback_primary", timeout=60)
    rebuilt = rebuild_replica(
        old, replica.conninfo(), replication=replication_conn(replica), slot="failback_primary", timeout=60
    )
    assert rebuilt["path"] == "rewind", rebuilt
    assert "no rewind required" not in rebuilt["rewind_output"]
    assert rebuilt["config"]["removed_settings"] == ["default_transaction_read_only = 'on'"]
    assert in_recovery(primary) and ids(primary) == list(range(1, 201))
    setting, receiver_user = streams_as(primary)
    assert f"user={REPLICATOR}" in setting and "user=postgres" not in setting
    assert receiver_user == REPLICATOR and rebuilt["replication_user"] == REPLICATOR
    again = rebuild_replica(
        old, replica.conninfo(), replication=replication_conn(replica), slot="failback_primary", timeout=60
    )
    assert again["path"] == "already-streaming"

    # Switch back: fence the new primary, promote the old one, and let the replica follow it again.
    fence(new, "read-only")
    back = promote(old, fence_node=new, max_lag_s=60)
    assert back["timeline"] == 3 and accepts_writes(old)
    insert(primary, 201, 210, "after failback")
    followed = rebuild_replica(
        new, primary.conninfo(), replication=replication_conn(primary), slot="test_replica", timeout=60
    )
    assert followed["path"] == "rewind" and followed["inactive_slots"] == [] and in_recovery(replica)
    assert ids(primary) == ids(replica) == list(range(1, 211))


def test_rebuild_falls_back_to_a_fresh_clone_when_rewind_is_impossible(
    pg_primary_with_replica: tuple[LocalCluster, LocalCluster], pg_bin_dir: Path
) -> None:
    primary, replica = pg_primary_with_replica
    old, new = as_node(primary, "primary"), as_node(replica, "replica")
    run(primary, f"create role {REPLICATOR} with login replication")
    run(primary, "create role too_mighty with login replication superuser")
    run(primary, "create table rows (id int primary key, phase text)")
    insert(primary, 1, 50, "before failover")

    stopped = fence(old, "stop")
    assert stopped["state"]["state"] == "stopped"
    promoted = promote(new, fence_node=old, max_lag_s=60)
    assert promoted["guards"]["fence"]["state"] == "stopped"
    assert promoted["guards"]["lag"]["upper_bound"] is True  # the old primary is down: timestamps only
    insert(replica, 51, 100, "after failover")

    # Without data checksums (and wal_log_hints off) pg_rewind refuses to run.
    primary.host.run([str(pg_bin_dir / "pg_checksums"), "--disable", "-D", str(primary.data_dir)], as_db_user=True)
    mighty = PgConnInfo(host="127.0.0.1", port=replica.port, user="too_mighty")
    with pytest.raises(RebuildError, match="role too_mighty on .* is a superuser; nothing was changed"):
        rebuild_replica(old, replica.conninfo(), replication=mighty, slot="failback_primary", timeout=60)
    rebuilt = rebuild_replica(
        old, replica.conninfo(), replication=replication_conn(replica), slot="failback_primary", timeout=60
    )
    assert rebuilt["path"] == "fresh-clone", rebuilt
    assert "wal_log_hints" in rebuilt["rewind_error"]
    assert (Path(rebuilt["moved_aside"]) / "PG_VERSION").is_file()
    health = node_health(old)
    assert health["in_recovery"] and health["wal_receiver"] == "streaming" and health["timeline"] == 2
    assert ids(primary) == list(range(1, 101))
    setting, receiver_user = streams_as(primary)
    assert f"user={REPLICATOR}" in setting and receiver_user == REPLICATOR


# --- operators, run with a minimal context (full Airflow runs are in the e2e tests) ---------------


FAILOVER_SPEC = """\
version: 1
metadata: {{name: failover-test, owner: test}}
regions: [{{name: test, role: primary}}]
storage:
  # A store that cannot be opened (no such connection) must not stop the assessment.
  - {{name: broken, type: s3, bucket: nowhere, conn_id: drflow_fo_no_s3, region: test}}
components:
  - name: db
    criticality: low
    rto: 5m
    rpo: 1m
    datastore:
      type: postgres
      database: postgres
      bin_dir: {bin_dir}
      primary: {{conn_id: drflow_fo_primary, region: test, data_directory: {primary_dir}}}
      replicas:
        - {{name: replica1, conn_id: drflow_fo_replica1, region: test, data_directory: {replica_dir},
           slot: test_replica}}
        # Its Airflow connection does not exist: the steps must cope with a node they cannot address.
        - {{name: replica2, conn_id: drflow_fo_nowhere, region: test}}
    backups:
      - {{name: daily, type: full, method: pg_basebackup, schedule: "@daily", targets: [broken],
         retention: {{days: 1}}}}
recovery_plans:
  - name: region-failover
    scenario: infrastructure-failure
    status: approved
    components: [db]
    approval: {{approvers: [alice, bob]}}
    steps:
      - {{name: promote, action: promote, component: db, node: replica1, fence: primary,
         description: Promote replica1.}}
      - {{name: fence, action: fence, component: db, node: primary, method: read-only}}
      - {{name: gate, action: gate_lag, component: db, node: primary}}
      - name: validate
        action: validate_sql
        component: db
        node: replica1
        checks:
          - {{name: rows, query: select count(*) from rows, expected: "5"}}
          - {{name: writable, query: select not pg_is_in_recovery(), expected: "true"}}
          - {{name: wrong, query: select max(id) from rows, expected: "6"}}
          - {{name: broken, query: select * from missing_table, expected: "1"}}
"""


def failover_params(primary: LocalCluster, replica: LocalCluster) -> Callable[..., dict[str, Any]]:
    """The params of a task of the region-failover plan over these clusters, as the plan builder writes them."""
    from tests.plan_inputs import task_params

    spec = FAILOVER_SPEC.format(bin_dir=primary.bin_dir, primary_dir=primary.data_dir, replica_dir=replica.data_dir)

    def params(task_id: str, **step: Any) -> dict[str, Any]:
        return task_params(spec, ".plan.region-failover", task_id, **step)

    return params


def test_operators_assess_refuse_fence_promote_and_validate(
    pg_primary_with_replica: tuple[LocalCluster, LocalCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from drflow.operators.failover import (
        AssessOperator,
        FenceOperator,
        LagGateOperator,
        PromoteOperator,
        ValidateSqlOperator,
    )

    primary, replica = pg_primary_with_replica
    for conn_id, cluster in (("DRFLOW_FO_PRIMARY", primary), ("DRFLOW_FO_REPLICA1", replica)):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres")
    params = failover_params(primary, replica)
    plain: dict[str, Any] = {"params": {"reason": "test"}}
    override: dict[str, Any] = {
        "params": {"reason": "test", "override_safety": True},
        "dag_run": SimpleNamespace(triggering_user_name="alice"),
    }
    run(primary, "create table rows (id int primary key, phase text)")
    insert(primary, 1, 5, "before failover")

    result = AssessOperator(task_id="assess", **params("assess")).execute(plain)
    assert result["candidates"] == ["replica1"] and "error" in result["newest_backup"]
    assert "| `replica2` | unreachable (AirflowNotFoundException" in result["summary"]
    assert "| `replica1` |" in result["summary"] and "could not read the store" in result["summary"]
    # The assessment lists what the plan will do (issue 8: the plan's steps never reached it).
    assert [s["name"] for s in result["plan_steps"]] == ["promote", "fence", "gate", "validate"]
    assert "1. `promote` (promote): Promote replica1." in result["summary"]
    assert "4. `validate` (validate_sql)" in result["summary"]

    promote_op = PromoteOperator(task_id="promote", **params("promote"))
    with pytest.raises(AirflowFailException, match=r"^refused: .* still accepts writes.*; to proceed: fence primary"):
        promote_op.execute(override)  # override_safety alone does not lift a guard the step does not allow
    assert in_recovery(replica)

    fenced = FenceOperator(task_id="fence", **params("fence")).execute(plain)
    assert fenced["fenced"] is True and fenced["overridden"] is False
    promoted = promote_op.execute(plain)
    assert promoted["timeline"] == 2 and not in_recovery(replica)

    gate = LagGateOperator(task_id="gate", **params("gate"))
    with pytest.raises(AirflowFailException, match=r"^refused: primary .* is not in recovery"):
        gate.execute(plain)
    # override_safety alone does not lift a gate whose step does not allow it (issue 7, item 4).
    with pytest.raises(AirflowFailException, match=r"^refused: primary .* is not in recovery"):
        gate.execute(override)
    overridden = LagGateOperator(task_id="gate", **params("gate", allow_override=True)).execute(override)
    assert overridden["overridden"] is True and overridden["passed"] is False
    assert overridden["override"] == {"by": "alice", "reason": "test", "skipped": "the lag gate on primary"}

    with pytest.raises(AirflowFailException) as failed:
        ValidateSqlOperator(task_id="validate", **params("validate")).execute(plain)
    message = str(failed.value)
    assert message.startswith("2 of 4 checks failed") and "wrong: expected '6', got '5'" in message
    assert "broken: expected '1', error: relation \"missing_table\" does not exist" in message
    passing = params("validate")
    passing["step"]["checks"] = passing["step"]["checks"][:2]
    assert ValidateSqlOperator(task_id="validate", **passing).execute(plain)["passed"] is True
