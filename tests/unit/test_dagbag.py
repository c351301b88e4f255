"""The project's DAG file as Airflow's dag-processor sees it."""

import os
import shutil
from pathlib import Path

from tests.fixtures.airflow import dagbag

SPEC = Path(__file__).resolve().parents[2] / "plan_specs" / "api-marketplace.yaml"


def test_the_dag_file_loads_every_spec_without_import_errors() -> None:
    bag = dagbag()
    assert bag.import_errors == {}
    ids = set(bag.dag_ids)
    assert "dr.api-marketplace.user-database.backup.daily-full" in ids
    assert "dr.api-marketplace.billing.drill.weekly-restore" in ids
    dag = bag.dags.get("dr.api-marketplace.user-database.backup.daily-full")
    assert dag is not None
    # Airflow lists tags alphabetically and shows three: the component and the kind come first.
    assert sorted(dag.tags)[:2] == ["component:user-database", "kind:backup"]
    assert set(dag.tags) == {
        "component:user-database",
        "kind:backup",
        "managed-by:drflow",
        "priority:critical",
        "spec:api-marketplace",
    }
    assert dag.dag_display_name == "User Database · backup daily-full"
    assert dag.is_paused_upon_creation is False  # protection starts active
    assert dag.doc_md and "User Database" in dag.doc_md
    assert dag.max_active_runs == 1 and dag.catchup is False
    take = dag.get_task("take_backup")
    assert take.owner == "platform-team" and take.retries == 2
    assert [t.task_id for t in take.upstream_list] == ["check_source"]


def test_the_dag_file_says_airflow_and_dag_for_safe_mode_parsing() -> None:
    text = (Path(__file__).resolve().parents[2] / "dags" / "drflow_dags.py").read_text().lower()
    assert "airflow" in text and "dag" in text


def test_a_broken_spec_is_a_visible_dag_and_the_others_still_load(tmp_path: Path) -> None:
    shutil.copy(SPEC, tmp_path / "api-marketplace.yaml")
    (tmp_path / "billing-extra.yaml").write_text(
        "version: 1\nmetadata:\n  name: extra\n  owner: ops\ncomponents:\n  - name: x\n    criticality: urgent\n"
    )
    os.environ["DRFLOW_SPECS_DIR"] = str(tmp_path)
    try:
        bag = dagbag()
    finally:
        del os.environ["DRFLOW_SPECS_DIR"]
    assert bag.import_errors == {}
    broken = bag.dags.get("dr.billing-extra.spec-error")
    assert broken is not None
    assert "kind:spec-error" in broken.tags
    assert "billing-extra.yaml:7:" in (broken.doc_md or "")
    assert "dr.api-marketplace.user-database.backup.daily-full" in bag.dag_ids
