"""Files backup and drill DAGs, compiled from a spec with `preset: files` and run through Airflow (dag.test())."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from drflow.store.catalog import Catalog
from drflow.store.local import LocalStore
from tests.fixtures.airflow import dagbag

pytestmark = pytest.mark.slow

SPEC = """\
version: 1
metadata: {{name: {name}, owner: web-team}}
defaults: {{retries: 0, work_dir: {root}/work}}
regions: [{{name: eu, role: primary}}]
storage: [{{name: vault, type: local, path: {root}/store}}]
components:
  - name: portal-assets
    criticality: high
    rto: 1h
    rpo: 1h
    datastore: {{type: files, path: {root}/assets}}
    backups:
      - {{preset: files, targets: [vault], retention: {{days: 7}}}}
    drills:
      - {{name: tree, type: restore, schedule: "@weekly"}}
"""


def test_files_backup_and_drill_dags_run_through_airflow(airflow_db: Path, specs_dir_env: Path, tmp_path: Path) -> None:
    name = f"files-{uuid.uuid4().hex[:8]}"
    assets = tmp_path / "assets"
    (assets / "img").mkdir(parents=True)
    (assets / "img" / "logo.svg").write_text("<svg/>")
    (specs_dir_env / f"{name}.yaml").write_text(SPEC.format(name=name, root=tmp_path))
    bag = dagbag()
    assert bag.import_errors == {}
    full = bag.dags[f"dr.{name}.portal-assets.backup.daily-full"]
    hourly = bag.dags[f"dr.{name}.portal-assets.backup.hourly-incremental"]
    drill = bag.dags[f"dr.{name}.portal-assets.drill.tree"]
    assert [t.task_id for t in full.tasks] == ["take_backup", "verify_backup"]

    assert full.test().state == "success"
    (assets / "index.html").write_text("<h1>new</h1>")
    assert hourly.test().state == "success"
    assert drill.test().state == "success"

    catalog = Catalog(LocalStore(tmp_path / "store"), name)
    first, second = catalog.list_backups("portal-assets")
    assert (first.backup_type, second.backup_type) == ("full", "incremental")
    assert second.parent_id == first.backup_id
    [report] = catalog.read_reports("portal-assets", "drill")
    assert report["passed"] and report["backup_id"] == second.backup_id
