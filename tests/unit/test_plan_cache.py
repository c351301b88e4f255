"""Compiled plans cached per spec file content: equal to a fresh compile, never stale, never trusted blindly."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import pytest

from drflow.plan import cache as plan_cache
from drflow.plan.cache import PlanCache, build_fingerprint
from drflow.plan.compile import compile_specs

ROOT = Path(__file__).resolve().parents[2]
MARKETPLACE = ROOT / "plan_specs" / "api-marketplace.yaml"
MINIMAL = ROOT / "plan_specs" / "examples" / "minimal.yaml"
BACKUP = "dr.minimal.app.backup.daily-full"


@pytest.fixture(autouse=True)
def empty_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process would: nothing compiled in memory."""
    monkeypatch.setattr(plan_cache, "_MEMORY", OrderedDict())


def forget_memory() -> None:
    plan_cache._MEMORY.clear()


def write_specs(specs: Path, names: list[str]) -> None:
    specs.mkdir(exist_ok=True)
    text = MARKETPLACE.read_text()
    for name in names:
        (specs / f"{name}.yaml").write_text(text.replace("name: api-marketplace", f"name: {name}", 1))


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*/*-*/*.pickle"))


def test_a_second_compile_reads_every_file_from_the_cache_and_equals_a_fresh_compile(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_specs(specs, ["one", "two"])
    fresh = compile_specs([specs])

    first = PlanCache(tmp_path / "cache")
    assert compile_specs([specs], cache=first) == fresh
    assert (first.hits, first.misses) == (0, 2)
    assert len(entries(tmp_path / "cache")) == 2

    forget_memory()  # a new DAG-parse process: only the disk is left
    second = PlanCache(tmp_path / "cache")
    assert compile_specs([specs], cache=second) == fresh
    assert (second.hits, second.misses) == (2, 0)


def test_a_changed_file_is_compiled_again_and_its_old_entry_goes(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_specs(specs, ["one"])
    cache = PlanCache(tmp_path / "cache")
    compile_specs([specs], cache=cache)
    spec = specs / "one.yaml"
    spec.write_text(spec.read_text().replace("owner: platform-team", "owner: storage-team", 1))

    for forget in (False, True):  # from memory, then from disk
        if forget:
            forget_memory()
        plans = compile_specs([specs], cache=PlanCache(tmp_path / "cache"))
        assert {plan.owner for plan in plans} == {"storage-team"}
    (entry,) = entries(tmp_path / "cache")
    assert entry.stem == plan_cache.sha256(spec.read_bytes())


def test_a_crlf_file_compiles_as_its_lf_twin(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_specs(specs, ["one"])
    lf = compile_specs([specs])
    spec = specs / "one.yaml"
    spec.write_bytes(spec.read_bytes().replace(b"\n", b"\r\n"))
    assert compile_specs([specs], cache=PlanCache(tmp_path / "cache")) == lf


def test_cross_file_checks_still_run_on_cached_files(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_specs(specs, ["a-first", "b-second"])
    (specs / "b-second.yaml").write_text((specs / "a-first.yaml").read_text())  # the same metadata.name
    for _ in range(2):
        forget_memory()
        plans = compile_specs([specs], cache=PlanCache(tmp_path / "cache"))
        (error,) = [plan for plan in plans if plan.kind == "spec-error"]
        assert error.dag_id == "dr.b-second.spec-error"
        assert "already used by" in (error.error or "")


def test_a_broken_spec_is_its_error_dag_and_keeps_its_last_good_dags_with_the_cache(tmp_path: Path) -> None:
    specs, last_good, directory = tmp_path / "specs", tmp_path / "last-good", tmp_path / "cache"
    specs.mkdir()
    spec = specs / "minimal.yaml"
    good = MINIMAL.read_text().replace("../../.sandbox/minimal-backups", "backups")
    spec.write_text(good)
    compile_specs([specs], last_good, PlanCache(directory))

    spec.write_text(good.replace("criticality: low", "criticality: urgent"))
    forget_memory()
    cache = PlanCache(directory)
    plans = {plan.dag_id: plan for plan in compile_specs([specs], last_good, cache)}
    assert "minimal.yaml:17:" in (plans["dr.minimal.spec-error"].error or "")
    assert "stale-spec" in plans[BACKUP].extra_tags
    assert cache.hits == 1, "the stale DAGs come from the cached good version"


def test_an_entry_others_can_write_or_a_damaged_entry_is_ignored(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_specs(specs, ["one"])
    fresh = compile_specs([specs])
    compile_specs([specs], cache=PlanCache(tmp_path / "cache"))
    (entry,) = entries(tmp_path / "cache")

    entry.chmod(0o666)
    forget_memory()
    cache = PlanCache(tmp_path / "cache")
    assert compile_specs([specs], cache=cache) == fresh
    assert cache.hits == 0, "a pickle others could have written is never loaded"

    entry.write_bytes(b"not a pickle")
    entry.chmod(0o600)
    forget_memory()
    cache = PlanCache(tmp_path / "cache")
    assert compile_specs([specs], cache=cache) == fresh
    assert cache.hits == 0
    forget_memory()
    cache = PlanCache(tmp_path / "cache")
    compile_specs([specs], cache=cache)
    assert cache.hits == 1, "the miss wrote a good entry again"


def test_an_unwritable_cache_directory_never_breaks_compiling(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_specs(specs, ["one"])
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    assert compile_specs([specs], cache=PlanCache(blocker)) == compile_specs([specs])


def test_the_build_fingerprint_follows_drflow_s_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "drflow" / "plan" / "build.py"
    module.parent.mkdir(parents=True)
    module.write_text("A = 1\n")
    monkeypatch.setattr(plan_cache, "_PACKAGE", tmp_path / "drflow")
    build_fingerprint.cache_clear()
    try:
        before = build_fingerprint()
        module.write_text("A = 22\n")
        build_fingerprint.cache_clear()
        assert build_fingerprint() != before
    finally:
        build_fingerprint.cache_clear()


def test_builds_unused_for_a_week_are_removed(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_specs(specs, ["one"])
    directory = tmp_path / "cache"
    old, recent = directory / "0123456789abcdef", directory / "fedcba9876543210"
    for other in (old, recent):
        other.mkdir(parents=True)
    week_ago = os.stat(recent).st_mtime - plan_cache.UNUSED_BUILD_S - 60
    os.utime(old, (week_ago, week_ago))
    compile_specs([specs], cache=PlanCache(directory))
    assert not old.exists() and recent.exists()
    assert (directory / build_fingerprint()).is_dir()
