"""The `drflow` command line: validate, schema, plan, backups, restore, sandbox, demo."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from drflow.cli_common import DEFAULT_SPECS, err, fail, friendly_errors, load_one, out
from drflow.cli_slots import slots_app

# The CLI talks to people: Airflow's info logs (connection lookups …) would bury the answer.
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")

app = typer.Typer(
    help="drflow: disaster-recovery plans as reviewed YAML, compiled into Airflow DAGs.",
    no_args_is_help=True,
    add_completion=False,
)
backups_app = typer.Typer(help="Read the backup catalog straight from the store (no Airflow needed).")
sandbox_app = typer.Typer(help="A local primary + replica PostgreSQL and a moto S3 server for trying drflow.")
app.add_typer(backups_app, name="backups")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(slots_app, name="slots")


@app.callback()
def _incident_mode(ctx: typer.Context) -> None:
    """Commands read Airflow connections from AIRFLOW_CONN_* without importing Airflow (seconds saved)."""
    from drflow.connections import read_without_airflow

    read_without_airflow()
    ctx.call_on_close(lambda: read_without_airflow(False))  # an in-process caller gets Airflow's way back


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Spec files or directories of specs.")],
) -> None:
    """Check specs; print every problem as file:line:col: path: what is wrong; what would be right."""
    from drflow.cli_validate import validate as run_validate

    run_validate(paths)


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write the JSON Schema of the spec language (for yaml-language-server in editors)."""
    from drflow.cli_validate import schema as run_schema

    run_schema(output)


@app.command()
def plan(
    paths: Annotated[list[Path], typer.Argument(help="Spec files or directories.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    base: Annotated[
        Path | None,
        typer.Option("--base", help="Directory with the specs before the change; print the diff."),
    ] = None,
) -> None:
    """Show the DAGs and tasks the specs produce, or (with --base) what a change adds, removes or alters."""
    from drflow.plan.compile import compile_specs
    from drflow.plan.diff import diff_plans

    if base is not None and not base.is_dir():
        raise fail(f"--base {base} is not a directory; give the directory of the specs before the change")
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
        table.add_row(p.dag_id, p.kind, schedule, " → ".join(t.task_id for t in p.tasks), style=style)
    out.print(table)
    errors = [p for p in plans if p.error]
    if errors:
        raise fail(f"{len(errors)} spec(s) do not validate; run drflow validate for details")


@backups_app.command("list")
@friendly_errors
def backups_list(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file whose storage targets to read.")] = (
        DEFAULT_SPECS / "api-marketplace.yaml"
    ),
    component: Annotated[str | None, typer.Option("--component", help="Only this component.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Only this storage target.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List complete backups, newest last, and which storage targets hold a copy, from the store alone."""
    from drflow.store.factory import target_catalogs

    loaded = load_one(spec, incident=True, component=component, target=target)
    targets = [t.model_dump(mode="json") for t in loaded.spec.storage if target in (None, t.name)]
    if not targets:
        raise fail(f"no storage target {target!r} in {spec}; known: {[t.name for t in loaded.spec.storage]}")
    known = [c.name for c in loaded.spec.components]
    if component is not None and component not in known:
        raise fail(f"no component {component!r} in {spec}; known: {', '.join(known)}")
    from drflow.store.base import StoreError
    from drflow.store.fanout import group_problems

    rows: list[dict[str, Any]] = []
    unreadable: list[tuple[str, str]] = []
    for name, catalog in target_catalogs(loaded.spec.metadata.name, targets):
        try:
            manifests = catalog.list_backups(component)
        except StoreError as exc:  # one unreachable target must not hide the copies in the others
            unreadable.append((name, str(exc)))
            continue
        rows.extend({"target": name, **manifest.model_dump(mode="json")} for manifest in manifests)
    for line in group_problems(unreadable):
        err.print(f"warning: cannot read storage target {line}", highlight=False, markup=False)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        what = f"of {component} " if component else ""
        where = ", ".join(f"{t['name']}" for t in targets)
        err.print(f"no complete backups {what}in {where}; run the backup DAGs first (or check --spec/--target)")
        if unreadable:
            raise fail("some storage targets could not be read (see above); fix their access and retry")
        return
    # One row per backup, one column per target: which copies exist where ("-": missing, "?": unreadable).
    names = [str(t["name"]) for t in targets]
    broken = {name for name, _ in unreadable}
    backups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["finished_at"], r["backup_id"], r["component"])):
        entry = backups.setdefault((row["component"], row["backup_id"]), {**row, "copies": set()})
        entry["copies"].add(row["target"])
    table = Table("component", "backup id", "type", "finished", "data", "stored", "duration", *names)
    for entry in backups.values():
        table.add_row(
            entry["component"],
            entry["backup_id"],
            f"{entry['backup_type']}/{entry['method']}",
            entry["finished_at"][:19],
            _size(entry["database_size_bytes"]),
            _size(entry["stored_bytes"]),
            f"{entry['duration_s']:.1f}s",
            *("?" if name in broken else "yes" if name in entry["copies"] else "-" for name in names),
        )
    out.print(table)


def _size(value: int | None) -> str:
    from drflow.units import human_size

    return "-" if value is None else human_size(value)


@app.command()
@friendly_errors
def restore(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file of the component.")],
    component: Annotated[str, typer.Option("--component", help="Component to restore.")],
    to: Annotated[Path, typer.Option("--to", help="Empty (or new) directory for the restored data.")],
    backup: Annotated[str | None, typer.Option("--backup", help="Backup id; default the newest.")] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", help="Storage target to restore from; default any (the first intact copy)."),
    ] = None,
    start: Annotated[bool, typer.Option("--start", help="Start PostgreSQL on it on a free port.")] = False,
    target_time: Annotated[
        str | None,
        typer.Option("--target-time", help="Recover to this time (ISO 8601 with timezone) from backup + WAL."),
    ] = None,
    target_lsn: Annotated[
        str | None, typer.Option("--target-lsn", help="Recover to this WAL position (e.g. 0/3000100) instead.")
    ] = None,
    clean_incomplete: Annotated[
        bool,
        typer.Option("--clean-incomplete", help="First empty --to if it holds a restore a killed run left incomplete."),
    ] = False,
) -> None:
    """Restore a component's backup from the store into a directory, without Airflow.

    With --target-time or --target-lsn: point-in-time recovery from a full backup plus archived WAL;
    a target the store cannot reach is refused with the recoverable range, before anything is written.
    """
    from drflow.hosts import LocalHost
    from drflow.jobs.restore import find_copies, restore_intact_copy, start_scratch_instance
    from drflow.store.factory import target_catalogs

    loaded = load_one(spec, incident=True, component=component, target=target)
    try:
        chosen = loaded.spec.component(component)
    except KeyError:
        raise fail(
            f"no component {component!r} in {spec}; known: {', '.join(c.name for c in loaded.spec.components)}"
        ) from None
    if chosen.datastore is None:
        raise fail(f"component {component!r} has no datastore to restore")
    targets = [t.model_dump(mode="json") for t in loaded.spec.storage if target in (None, t.name)]
    if not targets:
        raise fail(f"no storage target {target!r} in {spec}; known: {[t.name for t in loaded.spec.storage]}")
    if to.exists() and not to.is_dir():
        raise fail(f"--to {to} is a file, not a directory; give a new or empty directory (nothing was changed)")
    if to.is_dir():
        from drflow.engines.postgres import incomplete

        if clean_incomplete and (note := incomplete.clean_incomplete(to, host=LocalHost())):
            err.print(note, markup=False, highlight=False)
        incomplete.check_incomplete(to)
    if to.is_dir() and any(to.iterdir()):
        raise fail(f"--to {to} is not empty; restore into a new or empty directory (nothing was changed)")
    if target_time or target_lsn:
        from drflow.cli_pitr import restore_point_in_time

        try:
            lines = restore_point_in_time(
                loaded.spec.metadata.name,
                component,
                targets,
                to,
                bin_dir=Path(chosen.datastore.binaries),
                backup=backup,
                target_time=target_time,
                target_lsn=target_lsn,
                start=start,
            )
        except Exception as exc:  # every error here carries its own what-to-do
            raise fail(str(exc)) from None
        for line in lines:
            out.print(line, highlight=False, markup=False)
        return
    bin_dir = Path(chosen.datastore.binaries)
    host = LocalHost()
    choice = find_copies(target_catalogs(loaded.spec.metadata.name, targets), component, backup)
    for name, why in choice.unreadable:
        err.print(f"warning: skipped storage target {name}: {why}", highlight=False, markup=False)
    try:
        result, copy = restore_intact_copy(
            choice,
            to.resolve(),
            host=host,
            bin_dir=bin_dir,
            say=lambda message: err.print(f"warning: {message}", highlight=False, markup=False),
        )
    except Exception as exc:  # every engine error carries its own what-to-do
        raise fail(str(exc)) from None
    out.print(
        f"restored backup {copy.manifest.backup_id} of {component} from {copy.target} into {to} "
        f"(fetch {result.fetch_s:.1f}s, lay out and pg_verifybackup {result.lay_out_s:.1f}s)"
    )
    if start:
        instance = start_scratch_instance(to.resolve(), host=host, bin_dir=bin_dir)
        out.print(f"PostgreSQL is running on 127.0.0.1:{instance.port}; stop it with: {bin_dir}/pg_ctl -D {to} stop")


@app.command("pgbackrest-config")
def pgbackrest_config(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file of the component.")],
    component: Annotated[str, typer.Option("--component", help="Component whose stanza to render.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    pg_port: Annotated[int | None, typer.Option("--pg-port", help="Primary's port (default: its connection).")] = None,
    pg_user: Annotated[str | None, typer.Option("--pg-user", help="Role (default: the connection's login).")] = None,
) -> None:
    """Render the pgbackrest.conf of a component's stanza from the spec (no keys in it)."""
    from drflow.cli_methods import pgbackrest_config as run

    run(spec, component, output, pg_port, pg_user)


@app.command("restore-table")
def restore_table(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file of the component.")],
    component: Annotated[str, typer.Option("--component", help="Component with pg_dump backups.")],
    table: Annotated[str, typer.Option("--table", help="Table to restore (as pg_dump names it).")],
    schema: Annotated[str, typer.Option("--schema", help="Schema of the table.")] = "public",
    conn_id: Annotated[str | None, typer.Option("--conn-id", help="Airflow connection of the target.")] = None,
    dsn: Annotated[str | None, typer.Option("--dsn", help="libpq string of the target (no password).")] = None,
    backup: Annotated[str | None, typer.Option("--backup", help="Backup id; default the newest pg_dump.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Storage target to read the backup from.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Drop and restore an existing table.")] = False,
) -> None:
    """Restore one table of a pg_dump backup into a database, touching nothing else there."""
    from drflow.cli_methods import restore_table as run

    run(spec, component, table, schema, conn_id, dsn, backup, target, replace)


@sandbox_app.command("up")
@friendly_errors
def sandbox_up(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Start the sandbox (idempotent) and print the Airflow connections as AIRFLOW_CONN_* exports."""
    from drflow.sandbox.control import sandbox_up as up

    state = up()
    _print_sandbox(state, as_json)


@sandbox_app.command("down")
@friendly_errors
def sandbox_down(
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the sandbox data.")] = False,
) -> None:
    """Stop the sandbox servers."""
    from drflow.sandbox.control import sandbox_down as down

    down(purge=purge)
    out.print("sandbox stopped" + (" and purged" if purge else ""))


@sandbox_app.command("status")
@friendly_errors
def sandbox_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show what runs in the sandbox."""
    from drflow.sandbox.control import sandbox_status as status

    _print_sandbox(status(), as_json)


def _print_sandbox(state: dict[str, Any], as_json: bool) -> None:
    """Exports on stdout (for `eval "$(drflow sandbox up)"`), a summary for people on stderr."""
    if as_json:
        out.print_json(json.dumps(state))
        return
    postgres = state.get("postgres", {})
    s3 = state.get("s3", {})

    def node(name: str) -> str:
        facts = postgres.get(name, {})
        return f"running on 127.0.0.1:{facts['port']}" if facts.get("running") else "not running"

    s3_running = s3.get("running", bool(s3.get("buckets")))
    err.print(f"sandbox in {state['root']} (set DRFLOW_SANDBOX_DIR to use another)", highlight=False, markup=False)
    err.print(f"  primary: {node('primary')}; replica: {node('replica')}", highlight=False, markup=False)
    err.print(
        f"  S3 (moto): {'running at ' + s3['endpoint_url'] if s3_running else 'not running'}"
        + (f", buckets {', '.join(s3['buckets'])}" if s3.get("buckets") else ""),
        highlight=False,
        markup=False,
    )
    if not postgres.get("primary", {}).get("running"):
        err.print("  start it with: drflow sandbox up", highlight=False, markup=False)
        return
    for name, value in state.get("connections", {}).items():
        print(f"export {name}='{value}'")


@app.command()
@friendly_errors
def demo() -> None:
    """Run the demo: sandbox, demo data, backup and restore drill through Airflow, and a report."""
    from drflow.demo import run_demo

    raise typer.Exit(run_demo())


if __name__ == "__main__":
    app()
