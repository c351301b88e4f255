"""One base backup per cluster: two components whose databases live on one real primary, their backup runs of
one slot started together. One object set lands in the store, both catalogs record it, both restore it, and
retention keeps the objects until the last entry that records them goes."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from drflow.contracts import BackupRun
from drflow.engines.postgres.cluster import LocalCluster
from drflow.hosts import Host
from drflow.jobs.backup import FullBackupRequest, take_full_backup
from drflow.jobs.restore import restore_backup, start_scratch_instance
from drflow.operators.policy import request_fields
from drflow.store.factory import target_catalogs
from drflow.store.manifest import BackupManifest
from tests.fixtures.pg import create_database
from tests.plan_inputs import plans

pytestmark = pytest.mark.slow

SPEC = """\
version: 1
metadata: {{name: one-cluster, owner: test-team}}
regions: [{{name: us-east-1, role: primary}}]
storage:
  - {{name: store, type: local, path: {root}/store, region: us-east-1}}
components:
{components}
"""
COMPONENT = """\
  - name: {name}
    criticality: low
    rto: 1h
    rpo: 1d
    datastore: {{type: postgres, database: {name}, primary: {{conn_id: x10_cluster_primary, region: us-east-1}}}}
    backups:
      - {{name: daily-full, type: full, method: pg_basebackup, schedule: "0 2 * * *", targets: [store],
          retention: {{days: 7}}}}
    drills:
      - {{name: weekly, type: restore, schedule: "@weekly",
          validation: [{{name: rows, query: select count(*) from t}}]}}
"""
BACKUP_ID = "20261201T020000Z-daily-full-c1a2b3"  # what both components' scheduled runs of one slot get


def _runs(root: Path) -> dict[str, BackupRun]:
    text = SPEC.format(root=root, components="".join(COMPONENT.format(name=n) for n in ("gateway", "billing")))
    return {
        dag.dag_id.split(".")[2]: BackupRun.from_params(dag.task("take_backup").params["run"])
        for dag in plans(text, str(root / "spec.yaml"))
        if dag.dag_id.endswith(".backup.daily-full")
    }


def _count(cluster: LocalCluster, database: str) -> int:
    with psycopg.connect(**cluster.conninfo(database).libpq_kwargs()) as conn:
        row = conn.execute("select count(*) from t").fetchone()
    assert row is not None
    return int(row[0])


def test_components_on_one_cluster_share_one_base_backup(
    pg_primary: LocalCluster, pg_workdir: Path, pg_host: Host, pg_bin_dir: Path
) -> None:
    for name, rows in (("gateway", 30), ("billing", 70)):
        create_database(pg_primary, name, "create table t (id int)", f"insert into t select generate_series(1, {rows})")
    runs = _runs(pg_workdir)
    assert runs["gateway"].cluster is not None and runs["gateway"].cluster.components == ["gateway", "billing"]

    taken: dict[str, BackupManifest] = {}
    failures: dict[str, Exception] = {}

    def backup(component: str) -> None:
        run = runs[component]
        request = FullBackupRequest(
            **request_fields(run, BACKUP_ID),
            conn=pg_primary.conninfo(run.database),
            bin_dir=pg_bin_dir,
            cluster=run.cluster,
        )
        try:
            taken[component] = take_full_backup(request)
        except Exception as exc:  # reported below, from the test's thread
            failures[component] = exc

    threads = [threading.Thread(target=backup, args=(name,)) for name in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == {} and set(taken) == {"gateway", "billing"}
    holder = taken["gateway"].data_component
    assert {m.data_component for m in taken.values()} == {holder}
    assert all(m.shared is not None and m.shared.cluster.startswith("x10_cluster_primary#") for m in taken.values())
    assert taken["gateway"].validation_values == {"rows": "30"} and taken["billing"].validation_values == {"rows": "70"}

    [(_, catalog)] = target_catalogs("one-cluster", runs["gateway"].targets)
    store = catalog.store
    data = [key for key in store.list_keys("one-cluster/") if key.endswith("base.tar.zst")]
    assert data == [f"one-cluster/{holder}/backups/{BACKUP_ID}/base.tar.zst"]  # one object set for both
    assert [m.backup_id for c in runs for m in catalog.list_backups(c)] == [BACKUP_ID, BACKUP_ID]

    # Each component restores the shared backup from its own catalog entry; its drill values hold.
    for component, rows in (("gateway", 30), ("billing", 70)):
        manifest = catalog.get(component, BACKUP_ID)
        restored = restore_backup(
            catalog, manifest, pg_workdir / f"restored-{component}", host=pg_host, bin_dir=pg_bin_dir
        )
        server = start_scratch_instance(restored.data_dir, host=pg_host, bin_dir=pg_bin_dir)
        try:
            assert _count(server, component) == rows == int(manifest.validation_values["rows"])
        finally:
            server.stop("immediate")

    # A retry records nothing new and takes no second backup.
    backup("billing")
    assert [key for key in store.list_keys("one-cluster/") if key.endswith("base.tar.zst")] == data

    # Retention: the objects stay while another component's entry records them, and go with the last one.
    other = "billing" if holder == "gateway" else "gateway"
    catalog.discard(holder, BACKUP_ID)
    assert catalog.verify(catalog.get(other, BACKUP_ID)) == []
    catalog.discard(other, BACKUP_ID)
    assert store.list_keys("one-cluster/") == []
