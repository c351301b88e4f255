"""`drflow plan`: the DAGs and tasks specs produce, or what a change to them adds, removes or alters."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from drflow.cli.common import fail, out


def show_plan(paths: list[Path], as_json: bool, base: Path | None) -> None:
    """Print the plans as a table (or JSON), or with ``base`` their diff against the specs there."""
    from drflow.plan.compile import compile_specs
    from drflow.plan.diff import diff_plans

    if base is not None and not base.is_dir():
        raise fail(f"--base {base} is not a directory; give the directory of the specs before the change")
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise fail(f"{', '.join(missing)}: no such file or directory; give spec files or directories of specs")
    plans = compile_specs(paths)
    if base is not None:
        changes = diff_plans(compile_specs([base]), plans)
        if as_json:
            out.print_json(json.dumps(changes))
        elif not any(changes.values()):
            out.print("no DAG or task changes")
        else:
            for dag_id in changes["added"]:
                out.print(f"[green]+ {dag_id}[/green]", highlight=False)
            for dag_id in changes["removed"]:
                out.print(f"[red]- {dag_id}[/red]", highlight=False)
            for dag_id, details in changes["changed"].items():
                out.print(f"[yellow]~ {dag_id}[/yellow]", highlight=False)
                for line in details:
                    out.print(f"    {line}", highlight=False, markup=False)
        return
    if as_json:
        out.print_json(json.dumps([p.to_json() for p in plans]))
        return
    table = Table("DAG id", "kind", "schedule", "tasks", title=f"{len(plans)} DAGs")
    for p in plans:
        style = "red" if p.error else None
        schedule = p.schedule or (f"every {p.schedule_every_s}s" if p.schedule_every_s else "manual")
        if p.watch is not None:
            schedule = f"on change of asset {p.watch.asset}"
        table.add_row(p.dag_id, p.kind, schedule, " → ".join(t.task_id for t in p.tasks), style=style)
    out.print(table)
    errors = [p for p in plans if p.error]
    if errors:
        raise fail(f"{len(errors)} spec(s) do not validate; run drflow validate for details")
