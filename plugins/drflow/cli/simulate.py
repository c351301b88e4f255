"""`drflow simulate`: a recovery plan run against isolated copies, without Airflow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from drflow.cli.common import err, fail, load_one, out


def simulate(spec_path: Path, plan_name: str, as_json: bool) -> None:
    from drflow.hosts import LocalHost
    from drflow.jobs.simulation import run_simulation
    from drflow.plan.simulation import simulation_run
    from drflow.store.exercise_results import write_exercise_result

    spec = load_one(spec_path).spec
    plan = next((p for p in spec.recovery_plans if p.name == plan_name), None)
    if plan is None:
        known = ", ".join(p.name for p in spec.recovery_plans) or "none"
        raise fail(f"spec {spec_path} has no recovery plan {plan_name!r} (its plans: {known}); give one to --plan")
    if plan.status == "retired":
        raise fail(f"plan {plan_name!r} is retired; simulate its replacement, or approve it again in {spec_path}")
    run = simulation_run(spec, plan)
    # Not an Airflow run: the id says so, and sorts with the time it started.
    run_id = f"cli__{datetime.now(UTC).isoformat()}"
    say = (lambda line: err.print(line, markup=False, highlight=False)) if as_json else _progress
    result = run_simulation(run, run_id=run_id, host=LocalHost(), say=say)
    stored = write_exercise_result(result, run.storage)
    if as_json:
        out.print_json(json.dumps(result))
    else:
        _summary(result, stored["written"])
    for target, why in stored["failed"].items():
        err.print(f"error: the result could not be written into {target}: {why}", markup=False, highlight=False)
    if stored["failed"] or result["outcome"] != "passed":
        raise typer.Exit(1)


def _progress(line: str) -> None:
    out.print(line, markup=False, highlight=False)


def _summary(result: dict[str, object], written: dict[str, list[str]]) -> None:
    from drflow.units import human_duration

    measured = result["measured"]
    objectives = result["objectives"]
    assert isinstance(measured, dict) and isinstance(objectives, dict)

    def figure(key: str) -> str:
        value = measured[key]
        target = human_duration(objectives[key])
        return (
            f"not measured (objective {target})" if value is None else f"{human_duration(value)} (objective {target})"
        )

    outcome = str(result["outcome"]).upper()
    out.print(
        f"simulation of {result['plan']} ({result['scenario']}): {outcome}; recovery time {figure('rto_s')}, "
        f"data loss {figure('rpo_s')}",
        markup=False,
        highlight=False,
    )
    for target, keys in written.items():
        for key in keys:
            out.print(f"  result: {target}: {key}", markup=False, highlight=False)
