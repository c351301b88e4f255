"""Spec and plan side of issue 12 items 4-6: hosts over SSH, backups from a standby, one backup per cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from drflow.contracts import BackupRun, NodeFacts
from drflow.engines.postgres.pgbackrest_config import StanzaSettings, stanza_settings
from drflow.hosts import HostError
from drflow.hosts.ssh import env_line
from drflow.spec.diagnostics import SpecError
from drflow.spec.hosts import SshHostSpec
from drflow.spec.load import load_spec, load_spec_text
from tests.plan_inputs import plans

EXAMPLE = Path(__file__).resolve().parents[2] / "plan_specs" / "api-marketplace.yaml"
SPEC = """\
version: 1
metadata: {{name: shop, owner: platform-team}}
regions: [{{name: us-east-1, role: primary}}, {{name: us-west-2}}]
storage:
  - {{name: store, type: local, path: /var/tmp/shop-store, region: us-east-1}}
components:
  - name: orders
    criticality: high
    rto: 15m
    rpo: 5m
    datastore:
      type: postgres
      database: orders
      primary: {{conn_id: pg_primary, region: us-east-1, data_directory: /srv/pg/primary, host: {primary_host}}}
      replicas:
        - {{name: replica-1, conn_id: pg_replica, region: us-west-2, host: {replica_host}{replica_dir}}}
    backups:
      - {{name: daily-full, type: full, method: {method}, schedule: "@daily", targets: [store], from: {source},
          retention: {{days: 7}}}}
"""
SSH = "{ssh_conn_id: db1_ssh, db_user: postgres}"


def spec_text(
    *,
    method: str = "pg_basebackup",
    source: str = "replica-1",
    primary_host: str = SSH,
    replica_host: str = SSH,
    replica_dir: str = ", data_directory: /srv/pg/replica",
) -> str:
    return SPEC.format(
        method=method, source=source, primary_host=primary_host, replica_host=replica_host, replica_dir=replica_dir
    )


def errors(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, tmp_path / "shop.yaml")
    return [str(e) for e in caught.value.errors]


def test_hosts_reach_plan_facts_and_the_stanza(tmp_path: Path) -> None:
    spec = load_spec_text(spec_text(method="pgbackrest"), tmp_path / "shop.yaml").spec
    component = spec.component("orders")
    assert component.postgres is not None
    primary = component.postgres.primary
    assert primary.host == SshHostSpec(ssh_conn_id="db1_ssh", db_user="postgres")
    facts = NodeFacts(conn_id=primary.conn_id, host=primary.host)
    assert NodeFacts.from_params(facts.to_params()) == facts
    assert NodeFacts.from_params({"conn_id": "x"}).host == "local"
    settings = stanza_settings(spec, component)
    assert StanzaSettings.from_params(settings.to_params()).host == primary.host


def test_a_wrong_host_says_what_to_write(tmp_path: Path) -> None:
    [wrong] = errors(spec_text(primary_host="remote"), tmp_path)
    assert "'remote' is not a host; write 'local'" in wrong and "{ssh_conn_id: CONN" in wrong
    [unknown] = errors(spec_text(primary_host="{ssh_conn_id: db1_ssh, user: postgres}"), tmp_path)
    assert "unknown key 'user'" in unknown and "did you mean 'db_user'" in unknown


def test_from_names_a_replica_on_a_method_that_can_back_up_a_standby(tmp_path: Path) -> None:
    [unknown] = errors(spec_text(source="replica-2"), tmp_path)
    assert "takes its backup from 'replica-2', which is not a replica" in unknown and "replica-1" in unknown
    [dump] = errors(spec_text(method="pg_dump"), tmp_path)
    assert "method 'pg_dump' cannot back up a standby" in dump and "pg_basebackup or pgbackrest" in dump
    [no_dir] = errors(spec_text(method="pgbackrest", replica_dir=""), tmp_path)
    assert "the replica has no data_directory" in no_dir
    [elsewhere] = errors(spec_text(method="pgbackrest", replica_host="local"), tmp_path)
    assert "lives on another host than the primary" in elsewhere and "method pg_basebackup" in elsewhere


def test_a_standby_backup_runs_against_the_replica_with_the_rpo_as_its_lag_limit(tmp_path: Path) -> None:
    [dag] = [p for p in plans(spec_text(), str(tmp_path / "shop.yaml")) if p.dag_id.endswith(".backup.daily-full")]
    run = BackupRun.from_params(dag.task("take_backup").params["run"])
    assert run.standby is not None and (run.standby.name, run.standby.conn_id) == ("replica-1", "pg_replica")
    assert run.standby.max_lag_s == 300 and run.conn_id == "pg_primary"
    assert dag.task("check_source").params["conn_id"] == "pg_replica"
    assert "Refused while replica replica-1 lags more than the RPO (5m)" in dag.task("take_backup").doc


def test_components_on_one_cluster_share_a_policy_only_when_it_is_the_same() -> None:
    spec = load_spec(EXAMPLE).spec
    runs = {
        dag.dag_id.split(".")[2]: BackupRun.from_params(dag.task("take_backup").params["run"])
        for dag in plans(EXAMPLE.read_text(), str(EXAMPLE))
        if dag.dag_id.endswith(".backup.daily-full") and dag.task("take_backup").action == "postgres.full_backup"
    }
    shared = runs["user-database"].cluster
    assert shared is not None and shared.key == "drflow_pg_primary"
    # Billing keeps its backups 400 days under compliance lock: not the same policy, so not shared.
    assert shared.components == ["api-gateway", "api-portal", "api-catalog", "user-database", "analytics"]
    assert runs["billing"].cluster is None
    gateway = spec.component("api-gateway").postgres
    assert gateway is not None and shared.member("api-gateway").database == gateway.database
    assert all(runs[c].cluster == shared for c in shared.components)


def test_the_environment_of_an_ssh_command_is_one_quoted_line() -> None:
    assert env_line(None) == ":"
    assert env_line({"PGPASSWORD": "it's $x"}) == "export PGPASSWORD='it'\"'\"'s $x'"
    with pytest.raises(HostError, match="line break"):
        env_line({"KEY": "a\nb"})
    with pytest.raises(HostError, match="cannot be passed"):
        env_line({"BAD-NAME": "x"})
