"""Backup DAGs of methods pg_dump and pgbackrest, compiled from a spec and run through Airflow (dag.test())."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.pgbackrest_config import stanza_settings
from drflow.hosts import Host
from drflow.spec.load import load_spec_text
from drflow.store.factory import target_catalogs
from tests.fixtures.airflow import dagbag
from tests.fixtures.pg import airflow_conn_json
from tests.fixtures.pgbackrest import archiving_primary

pytestmark = pytest.mark.slow

SPEC = """\
version: 1
metadata: {{name: {name}, owner: test-team}}
defaults: {{retries: 0}}
regions: [{{name: us-east-1, role: primary}}]
storage:
  - {{name: local-store, type: local, path: {root}/store}}
components:
  - name: orders
    criticality: low
    rto: 1h
    rpo: 1d
    datastore:
      type: postgres
      database: shop
      bin_dir: {bin_dir}
      primary: {{conn_id: test_methods_primary, region: us-east-1, data_directory: {root}/primary}}
      pgbackrest: {{socket_dir: {root}/run, config: {root}/pgbackrest.conf}}
    backups:
      - {{name: nightly-dump, type: full, method: pg_dump, schedule: "@daily",
          targets: [local-store], retention: {{days: 7}}}}
      - {{name: weekly-full, type: full, method: pgbackrest, schedule: "@weekly",
          targets: [local-store], retention: {{days: 14}}}}
"""


@pytest.fixture
def spec_and_primary(
    specs_dir_env: Path, pg_workdir: Path, pg_host: Host, pg_bin_dir: Path
) -> Iterator[tuple[str, LocalCluster]]:
    """The spec in the DAGs' spec directory, and its primary archiving through pgBackRest."""
    name = f"methods-{uuid.uuid4().hex[:8]}"
    text = SPEC.format(name=name, root=pg_workdir, bin_dir=pg_bin_dir)
    (specs_dir_env / f"{name}.yaml").write_text(text)
    spec = load_spec_text(text, specs_dir_env / f"{name}.yaml").spec
    settings = stanza_settings(spec, spec.component("orders"))
    with archiving_primary(pg_workdir, pg_host, pg_bin_dir, settings, rows=100) as cluster:
        os.environ["AIRFLOW_CONN_TEST_METHODS_PRIMARY"] = airflow_conn_json(cluster)
        try:
            yield name, cluster
        finally:
            del os.environ["AIRFLOW_CONN_TEST_METHODS_PRIMARY"]


def test_pg_dump_and_pgbackrest_backup_dags_run_through_airflow(
    airflow_db: Path, spec_and_primary: tuple[str, LocalCluster], pg_workdir: Path
) -> None:
    name, _ = spec_and_primary
    bag = dagbag()
    assert bag.import_errors == {}
    dump_dag = bag.dags[f"dr.{name}.orders.backup.nightly-dump"]
    pgbackrest_dag = bag.dags[f"dr.{name}.orders.backup.weekly-full"]
    assert [t.task_id for t in dump_dag.tasks] == ["check_source", "take_backup", "verify_backup"]
    assert [t.task_id for t in pgbackrest_dag.tasks] == ["check_source", "pgbackrest_backup", "pgbackrest_verify"]

    assert dump_dag.test().state == "success"
    assert pgbackrest_dag.test().state == "success"

    [(_, catalog)] = target_catalogs(
        name, [{"name": "local-store", "type": "local", "path": str(pg_workdir / "store")}]
    )
    backups = catalog.list_backups("orders")
    assert [(m.policy, m.method, m.backup_type) for m in backups] == [
        ("nightly-dump", "pg_dump", "full"),
        ("weekly-full", "pgbackrest", "full"),
    ]
    assert backups[1].extra["repo"] == 1 and backups[1].extra["label"].endswith("F")
    assert (pg_workdir / "store" / "pgbackrest" / "backup" / f"{name}-orders").is_dir()
