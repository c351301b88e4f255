"""`drflow runbook`: a recovery plan's runbook, written from the DAG plan Airflow runs."""

from __future__ import annotations

from pathlib import Path

from drflow.cli.common import fail, load_one, out


def show_runbook(spec_path: Path, plan_name: str, fmt: str, output: Path | None) -> None:
    from drflow.plan.recovery import plan_graph
    from drflow.plan.runbook import FORMATS, render_runbook

    if fmt not in FORMATS:
        raise fail(f"--format {fmt} is not known; use one of {', '.join(FORMATS)}")
    spec = load_one(spec_path).spec
    plan = next((p for p in spec.recovery_plans if p.name == plan_name), None)
    if plan is None:
        known = ", ".join(p.name for p in spec.recovery_plans) or "none"
        raise fail(f"spec {spec_path} has no recovery plan {plan_name!r} (its plans: {known}); give one to --plan")
    # The graph the DAG runs once approved; a draft's runbook says its status at the top.
    dag = plan_graph(spec, plan, str(spec_path))
    text = render_runbook(dag, fmt)
    if output is None:
        out.print(text, markup=False, highlight=False, soft_wrap=True)
    else:
        output.write_text(text)
        out.print(f"wrote the runbook of {dag.dag_id} to {output}", markup=False, highlight=False)
