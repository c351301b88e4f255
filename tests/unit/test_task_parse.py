"""Parsing the DAG file to run a task builds only that task's DAG, from that spec file alone."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drflow.plan import cache as plan_cache
from drflow.plan.cache import PlanCache
from drflow.plan.compile import compile_specs, plans_for_dag
from tests.fixtures.airflow import dagbag

ROOT = Path(__file__).resolve().parents[2]
MARKETPLACE = ROOT / "plan_specs" / "api-marketplace.yaml"
FAILOVER = "dr.b.plan.region-failover"
CONTEXT = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two copies of the example (a, b) and a broken file, with the DAG file and its cache pointed at them."""
    monkeypatch.setattr(plan_cache, "_MEMORY", OrderedDict())
    directory = tmp_path / "specs"
    directory.mkdir()
    text = MARKETPLACE.read_text()
    for name in ("a", "b"):
        (directory / f"{name}.yaml").write_text(text.replace("name: api-marketplace", f"name: {name}", 1))
    (directory / "zz-broken.yaml").write_text("version: 1\nmetadata: {name: broken}\n")
    monkeypatch.setenv("DRFLOW_SPECS_DIR", str(directory))
    monkeypatch.setenv("DRFLOW_PLAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DRFLOW_LAST_GOOD_DIR", str(tmp_path / "last-good"))
    monkeypatch.delenv(CONTEXT, raising=False)
    yield directory


def serialized(dag: Any) -> Any:
    from airflow.serialization.serialized_objects import DagSerialization

    return json.loads(json.dumps(DagSerialization.to_dict(dag)["dag"], sort_keys=True, default=str))


def test_a_task_s_parse_builds_only_its_dag_and_the_same_dag_as_a_full_parse(
    specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = dagbag()
    assert full.import_errors == {}
    cached = compile_specs([specs], cache=PlanCache(specs.parent / "cache"))  # what the full parse cached
    assert sorted(full.dag_ids) == sorted(plan.dag_id for plan in cached)
    assert "dr.zz-broken.spec-error" in full.dag_ids

    monkeypatch.setenv(CONTEXT, FAILOVER)
    plan_cache._MEMORY.clear()  # the task runs in a fresh process
    bag = dagbag()
    assert bag.import_errors == {}
    assert bag.dag_ids == [FAILOVER]
    assert serialized(bag.dags[FAILOVER]) == serialized(full.dags[FAILOVER])

    monkeypatch.setenv(CONTEXT, "dr.zz-broken.spec-error")
    assert dagbag().dag_ids == ["dr.zz-broken.spec-error"], "a spec-error DAG's task finds its DAG too"


def test_the_indexed_spec_file_alone_is_read_while_it_is_unchanged(specs: Path, tmp_path: Path) -> None:
    compile_specs([specs], cache=PlanCache(tmp_path / "cache"))  # the DAG processor's full parse
    plan_cache._MEMORY.clear()
    cache = PlanCache(tmp_path / "cache")
    (plan,) = plans_for_dag([specs], FAILOVER, cache=cache)
    assert plan.dag_id == FAILOVER
    assert (cache.hits, cache.misses) == (1, 0), "one cached file read, nothing compiled"

    spec = specs / "b.yaml"
    spec.write_text(spec.read_text().replace("owner: platform-team", "owner: storage-team", 1))
    cache = PlanCache(tmp_path / "cache")
    (plan,) = plans_for_dag([specs], FAILOVER, cache=cache)
    assert plan.owner == "storage-team", "a changed file is compiled again, never served stale"
    assert cache.misses >= 1
    cache = PlanCache(tmp_path / "cache")
    assert plans_for_dag([specs], FAILOVER, cache=cache)[0].owner == "storage-team"
    assert (cache.hits, cache.misses) == (1, 0), "the fallback's full compile updated the index"


def test_no_dag_for_an_unknown_id_or_a_spec_outside_the_specs_dir(specs: Path, tmp_path: Path) -> None:
    cache = PlanCache(tmp_path / "cache")
    compile_specs([specs], cache=cache)
    assert plans_for_dag([specs], "dr.b.no-such-component.backup.daily", cache=cache) == []
    assert plans_for_dag([specs], "not-drflow", cache=cache) == []
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert plans_for_dag([elsewhere], FAILOVER, cache=cache) == [], "the index never reaches outside the paths"
