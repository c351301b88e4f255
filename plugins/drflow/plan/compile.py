"""Specs on disk → DAG plans, without Airflow: the front half of the pipeline."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from drflow.plan.build import build_plans, error_plan
from drflow.plan.cache import CompiledSpec, PlanCache, sha256
from drflow.plan.graph import DagPlan
from drflow.spec.diagnostics import SpecError
from drflow.spec.last_good import LastGoodStore
from drflow.spec.load import (
    SPEC_SUFFIXES,
    Admission,
    SpecFailure,
    discover,
    load_spec_bytes,
    load_spec_text,
    read_spec,
)
from drflow.spec.slots import spec_claims

STALE_TAG = "stale-spec"


def compile_specs(
    paths: Iterable[Path | str], last_good: Path | None = None, cache: PlanCache | None = None
) -> list[DagPlan]:
    """Every DAG plan of the given specs; a spec that fails validation yields its error plan instead.

    With a `last_good` directory, each spec that validates is kept there (by content hash), and a
    spec that stops validating keeps its DAGs from that copy, every one tagged `stale-spec` with a
    banner naming the errors, beside its error plan. A removed spec's copy is dropped.
    With a `cache`, a file whose bytes were compiled before is not compiled again (see drflow.plan.cache).
    """
    named = [Path(p) for p in paths]
    store = LastGoodStore(last_good) if last_good is not None else None
    admission = Admission()
    admitted: list[CompiledSpec] = []
    failures: list[SpecFailure] = []
    for path in discover(named):
        outcome = _compile_file(path, cache)
        if isinstance(outcome, SpecFailure):
            failures.append(outcome)
            continue
        compiled, data = outcome
        refused = admission.admit(path, compiled.name, compiled.claims, compiled.warnings)
        if refused is not None:
            failures.append(SpecFailure(path, refused.errors))
            continue
        admitted.append(compiled)
        if store is not None and compiled.built:
            store.remember(path, data)
    plans = [plan for compiled in admitted for plan in compiled.plans]
    stale: list[DagPlan] = []
    for source, diagnostics in failures:
        errors = [str(d) for d in diagnostics if d.is_error]
        error = error_plan(source, [str(d) for d in diagnostics])
        kept = _stale_plans(store, source, errors, error.dag_id, cache) if store is not None else []
        if kept:
            note = (
                f"The DAGs of the last version that validated are still loaded, tagged `{STALE_TAG}` "
                "(they run that version, not this file). Other specs are not affected."
            )
            error = replace(error, doc_md=error.doc_md.replace(_HIDDEN_NOTE, note))
        plans.append(error)
        stale += kept
    if store is not None:
        store.forget_removed([p for p in named if p.is_dir()])
    if cache is not None:
        cache.set_owners(compiled for compiled in admitted if compiled.built)
        cache.tidy()
    taken = {plan.dag_id for plan in plans}
    return plans + [plan for plan in stale if plan.dag_id not in taken]  # a fresh DAG always wins its id


def plans_for_dag(
    paths: Iterable[Path | str], dag_id: str, last_good: Path | None = None, cache: PlanCache | None = None
) -> list[DagPlan]:
    """The plan of one DAG (what a task needs), or none when no spec makes it.

    Taken from the one spec file the cache's index names for the DAG id's spec name, when that file is
    unchanged since the last full parse admitted it; otherwise (no index yet, a changed file, a stale or
    spec-error DAG) from `compile_specs` over every spec, which the cache keeps cheap.
    """
    named = [Path(p) for p in paths]
    if cache is not None:
        found = _indexed_plan(named, dag_id, cache)
        if found is not None:
            return [found]
    return [plan for plan in compile_specs(named, last_good, cache) if plan.dag_id == dag_id]


def _indexed_plan(named: list[Path], dag_id: str, cache: PlanCache) -> DagPlan | None:
    prefix, _, rest = dag_id.partition(".")
    name = rest.partition(".")[0]
    owner = cache.owner(name) if prefix == "dr" and name else None
    if owner is None:
        return None
    path, digest = owner
    if not _named_by(path, named):
        return None
    try:
        if sha256(path.read_bytes()) != digest:
            return None
    except OSError:
        return None
    compiled = cache.get(path, digest)
    return compiled.plan(dag_id) if compiled is not None else None


def _named_by(path: Path, named: list[Path]) -> bool:
    """Whether `discover(named)` would list `path` (without listing the directories)."""
    if path in named:
        return True
    eligible = path.suffix in SPEC_SUFFIXES and not path.name.startswith(("_", "."))
    return eligible and path.parent in named


def _compile_file(path: Path, cache: PlanCache | None) -> tuple[CompiledSpec, bytes] | SpecFailure:
    """One file on its own: from the cache when its bytes were compiled before, else loaded and built."""
    try:
        data = read_spec(path)
        digest = sha256(data)
        hit = cache.get(path, digest) if cache is not None else None
        if hit is not None:
            return hit, data
        loaded = load_spec_bytes(data, path)
    except SpecError as exc:
        return SpecFailure(path, exc.errors)
    compiled = CompiledSpec(path, digest, loaded.name, tuple(spec_claims(loaded.spec)), tuple(loaded.warnings), ())
    try:
        compiled = replace(compiled, plans=tuple(build_plans(loaded.spec, path)))
    except Exception as exc:  # a builder defect shows as this spec's error DAG, never hides other specs
        error = error_plan(path, [f"{path}: drflow could not plan this spec: {exc!r}"])
        return replace(compiled, plans=(error,), built=False), data
    if cache is not None:
        cache.put(compiled)
    return compiled, data


_HIDDEN_NOTE = "None of this spec's DAGs are loaded until it is fixed. Other specs are not affected."


def _stale_plans(
    store: LastGoodStore, source: Path, errors: list[str], error_dag: str, cache: PlanCache | None
) -> list[DagPlan]:
    copy = store.recall(source)
    if copy is None:
        return []
    compiled = cache.get(source, copy.sha256) if cache is not None else None
    try:
        plans = list(compiled.plans) if compiled else build_plans(load_spec_text(copy.text, source).spec, source)
    except Exception:  # a copy this drflow version no longer accepts: show only the error DAG
        return []
    listing = "\n".join(f"> - `{line}`" for line in errors)
    banner = (
        f"> **Stale spec.** `{source}` no longer validates, so this DAG runs the last version of it that "
        f"validated (sha256 `{copy.sha256[:12]}`), not the file as it is now. Fix the file (see DAG "
        f"`{error_dag}`, or run `drflow validate {source}`); this banner goes when it validates again.\n>\n"
        f"> Errors in the file now:\n{listing}\n\n"
    )
    return [
        replace(
            plan,
            doc_md=banner + plan.doc_md,
            description=f"STALE SPEC: {plan.description}"[:200],
            display_name=f"{plan.display_name or plan.dag_id} · STALE SPEC",
            extra_tags=(*plan.extra_tags, STALE_TAG),
        )
        for plan in plans
    ]
