"""A broken spec never takes away the DAGs it had: the last version that validated keeps rendering, marked stale."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from drflow.render.airflow import render_specs
from tests.fixtures.airflow import dagbag

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "plan_specs" / "examples" / "minimal.yaml"
MARKETPLACE = ROOT / "plan_specs" / "api-marketplace.yaml"
BACKUP = "dr.minimal.app.backup.daily-full"
ERROR = "dr.minimal.spec-error"


def _copy(tmp_path: Path) -> tuple[Path, Path, Path]:
    specs, last_good = tmp_path / "specs", tmp_path / "last-good"
    specs.mkdir()
    spec = specs / "minimal.yaml"
    spec.write_text(MINIMAL.read_text().replace("../../.sandbox/minimal-backups", "backups"))
    return specs, spec, last_good


def test_good_then_broken_then_fixed_then_removed(tmp_path: Path) -> None:
    specs, spec, last_good = _copy(tmp_path)
    good = spec.read_text()

    dags = render_specs([specs], last_good=last_good)
    assert BACKUP in dags and ERROR not in dags
    assert "stale-spec" not in dags[BACKUP].tags
    (entry,) = last_good.iterdir()
    assert len(list(entry.glob("*.yaml"))) == 1

    spec.write_text(good.replace("criticality: low", "criticality: urgent"))
    dags = render_specs([specs], last_good=last_good)
    assert ERROR in dags, "the broken spec is shown"
    assert BACKUP in dags, "the DAGs of the last good version stay"
    stale = dags[BACKUP]
    assert "stale-spec" in stale.tags
    assert (stale.description or "").startswith("STALE SPEC")
    assert "no longer validates" in (stale.doc_md or "") and "criticality" in (stale.doc_md or "")
    assert "minimal.yaml:17:" in (stale.doc_md or ""), "the banner names the errors with their lines"
    assert [t.task_id for t in stale.tasks] == ["check_source", "take_backup", "verify_backup"]
    assert "stale-spec" in (dags[ERROR].doc_md or "")
    assert len(list(entry.glob("*.yaml"))) == 1, "a broken spec writes nothing"

    spec.write_text(good.replace("days: 7", "days: 8"))
    dags = render_specs([specs], last_good=last_good)
    assert ERROR not in dags and "stale-spec" not in dags[BACKUP].tags
    (copy,) = entry.glob("*.yaml")
    assert "days: 8" in copy.read_text(), "the new good version replaced the old copy"

    spec.unlink()
    (specs / "other.yaml").write_text(MARKETPLACE.read_text())
    dags = render_specs([specs], last_good=last_good)
    assert BACKUP not in dags and ERROR not in dags
    assert [p.name.startswith("other-") for p in last_good.iterdir()] == [True], "the removed spec's copy is gone"


def test_an_unchanged_good_spec_writes_nothing_and_an_unwritable_store_breaks_nothing(tmp_path: Path) -> None:
    specs, _, last_good = _copy(tmp_path)
    render_specs([specs], last_good=last_good)
    (entry,) = last_good.iterdir()
    (copy,) = entry.glob("*.yaml")
    before = copy.stat().st_mtime_ns
    render_specs([specs], last_good=last_good)
    assert copy.stat().st_mtime_ns == before

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store's directory should be")
    dags = render_specs([specs], last_good=blocked)
    assert BACKUP in dags


def test_the_dag_file_keeps_the_stale_dags(tmp_path: Path) -> None:
    specs, spec, last_good = _copy(tmp_path)
    shutil.copy(MARKETPLACE, specs / "api-marketplace.yaml")
    saved = {key: os.environ.get(key) for key in ("DRFLOW_SPECS_DIR", "DRFLOW_LAST_GOOD_DIR")}
    os.environ.update(DRFLOW_SPECS_DIR=str(specs), DRFLOW_LAST_GOOD_DIR=str(last_good))
    try:
        assert BACKUP in dagbag().dag_ids
        spec.write_text(spec.read_text().replace("rto: 4h", "rto: 4 hours"))
        bag = dagbag()
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.update({key: value})
    assert bag.import_errors == {}
    assert {ERROR, BACKUP} <= set(bag.dag_ids)
    assert "stale-spec" in bag.dags[BACKUP].tags
    assert "stale-spec" not in bag.dags["dr.api-marketplace.user-database.backup.daily-full"].tags
