"""Specs on disk → DAG plans, without Airflow: the front half of the pipeline."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from drflow.plan.build import build_plans, error_plan
from drflow.plan.graph import DagPlan
from drflow.spec.last_good import LastGoodStore
from drflow.spec.load import load_spec_text, load_specs

STALE_TAG = "stale-spec"


def compile_specs(paths: Iterable[Path | str], last_good: Path | None = None) -> list[DagPlan]:
    """Every DAG plan of the given specs; a spec that fails validation yields its error plan instead.

    With a `last_good` directory, each spec that validates is kept there (by content hash), and a
    spec that stops validating keeps its DAGs from that copy, every one tagged `stale-spec` with a
    banner naming the errors, beside its error plan. A removed spec's copy is dropped.
    """
    named = [Path(p) for p in paths]
    loaded, failures = load_specs(named)
    store = LastGoodStore(last_good) if last_good is not None else None
    plans: list[DagPlan] = []
    for item in loaded:
        try:
            plans.extend(build_plans(item.spec, item.path))
        except Exception as exc:  # a builder defect shows as this spec's error DAG, never hides other specs
            plans.append(error_plan(item.path, [f"{item.path}: drflow could not plan this spec: {exc!r}"]))
            continue
        if store is not None:
            store.remember(item.path, item.path.read_bytes())
    stale: list[DagPlan] = []
    for source, diagnostics in failures:
        errors = [str(d) for d in diagnostics if d.is_error]
        error = error_plan(source, [str(d) for d in diagnostics])
        kept = _stale_plans(store, source, errors, error.dag_id) if store is not None else []
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
    taken = {plan.dag_id for plan in plans}
    return plans + [plan for plan in stale if plan.dag_id not in taken]  # a fresh DAG always wins its id


_HIDDEN_NOTE = "None of this spec's DAGs are loaded until it is fixed. Other specs are not affected."


def _stale_plans(store: LastGoodStore, source: Path, errors: list[str], error_dag: str) -> list[DagPlan]:
    copy = store.recall(source)
    if copy is None:
        return []
    try:
        plans = build_plans(load_spec_text(copy.text, source).spec, source)
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
