"""The `drflow` command line: validate, schema, plan, backups, restore, sandbox, demo."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from drflow.cli.backups import backups_app
from drflow.cli.common import DEFAULT_SPECS, friendly_errors
from drflow.cli.config import config_app
from drflow.cli.lifecycle import lifecycle
from drflow.cli.sandbox import sandbox_app
from drflow.cli.slots import slots_app

# The CLI talks to people: Airflow's info logs (connection lookups …) would bury the answer.
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")

app = typer.Typer(
    help="drflow: disaster-recovery plans as reviewed YAML, compiled into Airflow DAGs.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(backups_app, name="backups")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(slots_app, name="slots")
app.add_typer(config_app, name="config")
app.command("lifecycle")(lifecycle)


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
    from drflow.cli.validate import validate as run_validate

    run_validate(paths)


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write the JSON Schema of the spec language (for yaml-language-server in editors)."""
    from drflow.cli.validate import schema as run_schema

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
    from drflow.cli.plan import show_plan

    show_plan(paths, as_json, base)


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
    zone: Annotated[
        str | None,
        typer.Option(
            "--zone", help="Snapshot sources: availability zone of the new volume or instance (--to: region)."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Files datastores: the newest backup finished at or before this time (ISO 8601); "
            "databases: the same as --target-time.",
        ),
    ] = None,
) -> None:
    """Restore a component's backup from the store into a directory, without Airflow.

    With --target-time or --target-lsn: point-in-time recovery from a full backup plus archived WAL;
    a target the store cannot reach is refused with the recoverable range, before anything is written.
    A snapshot source (EBS, RDS) is restored into AWS instead: --to names the region, --zone the zone.
    """
    from drflow.cli.restore import restore as run

    run(spec, component, to, backup, target, start, target_time, target_lsn, clean_incomplete, zone, at)


@app.command("pgbackrest-config")
def pgbackrest_config(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file of the component.")],
    component: Annotated[str, typer.Option("--component", help="Component whose stanza to render.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    pg_port: Annotated[int | None, typer.Option("--pg-port", help="Primary's port (default: its connection).")] = None,
    pg_user: Annotated[str | None, typer.Option("--pg-user", help="Role (default: the connection's login).")] = None,
) -> None:
    """Render the pgbackrest.conf of a component's stanza from the spec (no keys in it)."""
    from drflow.cli.methods import pgbackrest_config as run

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
    from drflow.cli.methods import restore_table as run

    run(spec, component, table, schema, conn_id, dsn, backup, target, replace)


@app.command()
@friendly_errors
def expire(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file whose backups to expire.")],
    component: Annotated[str | None, typer.Option("--component", help="Only this component.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be deleted and why the rest stays.")
    ] = False,
    now: Annotated[
        str | None, typer.Option("--now", help="Judge ages at this time (ISO 8601 with timezone) instead of now.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Delete backups their retention no longer keeps, in every storage target on its own (no Airflow needed)."""
    from drflow.cli.expire import expire as run

    run(spec, component, dry_run, now, as_json)


# The options of `backups pin` and `backups unpin` that say where the backup is.
HoldingSpec = Annotated[Path, typer.Option("--spec", help="Spec file whose storage targets hold it.")]
FoundComponent = Annotated[str | None, typer.Option("--component", help="Its component (default: found).")]


@backups_app.command("pin")
@friendly_errors
def backups_pin(
    backup_id: Annotated[str, typer.Argument(help="Backup id to keep past its retention.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it must be kept (recorded with who and when).")],
    spec: HoldingSpec = DEFAULT_SPECS / "api-marketplace.yaml",
    component: FoundComponent = None,
    by: Annotated[str | None, typer.Option("--by", help="Who pins it (default: the login name).")] = None,
) -> None:
    """Keep a backup past its retention in every target holding it, until unpinned."""
    from drflow.cli.expire import pin

    pin(spec, component, backup_id, reason, by)


@backups_app.command("unpin")
@friendly_errors
def backups_unpin(
    backup_id: Annotated[str, typer.Argument(help="Backup id to release to its retention again.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it may expire now (recorded with who and when).")],
    spec: HoldingSpec = DEFAULT_SPECS / "api-marketplace.yaml",
    component: FoundComponent = None,
    by: Annotated[str | None, typer.Option("--by", help="Who unpins it (default: the login name).")] = None,
) -> None:
    """Remove a pin; the backup then expires with its policy's retention."""
    from drflow.cli.expire import unpin

    unpin(spec, component, backup_id, reason, by)


@app.command()
@friendly_errors
def runbook(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file of the plan.")],
    plan: Annotated[str, typer.Option("--plan", help="Recovery plan name.")],
    fmt: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """The plan's runbook, written from the task graph its DAG runs (the same text as the DAG's docs)."""
    from drflow.cli.runbook import show_runbook

    show_runbook(spec, plan, fmt, output)


@app.command()
@friendly_errors
def simulate(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file of the plan.")],
    plan: Annotated[str, typer.Option("--plan", help="Recovery plan to simulate.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the exercise result as JSON.")] = False,
) -> None:
    """Run a recovery plan against isolated copies (the newest backups in scratch instances, a test DNS record),
    measure its recovery time and data loss, and store the result in every storage target; touches nothing
    in production. Exit 1 when the simulation failed."""
    from drflow.cli.simulate import simulate as run

    run(spec, plan, as_json)


@app.command()
@friendly_errors
def report(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file whose components to report on.")],
    as_json: Annotated[bool, typer.Option("--json", help="The metrics as JSON.")] = False,
    as_html: Annotated[bool, typer.Option("--html", help="One HTML page with charts.")] = False,
    period: Annotated[str, typer.Option("--period", help="Rates count this period before now.")] = "90d",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """DR metrics from the store: actual RTO/RPO against the objectives, success rates, MTTR, backup ages.

    Exits 1 when a component is red (a failed drill or recovery, an objective missed, no backup)."""
    from drflow.cli.report import show_report

    raise typer.Exit(show_report(spec, as_json, as_html, period, output))


@app.command("walkthrough")
@friendly_errors
def walkthrough_command(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file of the plan.")],
    plan: Annotated[str, typer.Option("--plan", help="Recovery plan name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    record: Annotated[
        str | None, typer.Option("--record", help="Store the result as this walkthrough exercise of the spec.")
    ] = None,
) -> None:
    """Every step of a plan in check-only mode: which steps would fail today, and why. Changes nothing."""
    from drflow.cli.walkthrough import walkthrough

    walkthrough(spec, plan, as_json, record)


@app.command("incident-report")
@friendly_errors
def incident_report(
    run: Annotated[str, typer.Option("--run", help="Run id of the plan's DAG run.")],
    spec: Annotated[Path | None, typer.Option("--spec", help="Spec file of the plan (to read its store).")] = None,
    plan: Annotated[str | None, typer.Option("--plan", help="Recovery plan name.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Post-incident report of one plan run: timeline, decisions, RTO/RPO against the objectives, slowest steps."""
    from drflow.cli.incident import incident_report as run_report

    run_report(run, spec, plan, fmt, output)


@app.command("compliance-report")
@friendly_errors
def compliance_report(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file whose components to report on.")],
    from_: Annotated[
        str | None,
        typer.Option(
            "--from", help="Start of the period: a date (2026-11-01) or a time with a timezone; default 30 days ago."
        ),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="End of the period: a date (that whole day) or a time; default now.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    as_html: Annotated[bool, typer.Option("--html", help="One HTML page.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Compliance evidence per component and period: backups taken against their schedules, retention, locks and
    encryption per copy, copies per region, drills and exercises done with their results, incidents with their
    measured RTO and RPO, and stale documentation; read from the store alone."""
    from drflow.cli.compliance import compliance_report as run

    run(spec, from_, to, as_json, as_html, output)


@app.command()
@friendly_errors
def demo() -> None:
    """Run the demo: sandbox, demo data, backup and restore drill through Airflow, and a report."""
    from drflow.devtools.demo import run_demo

    raise typer.Exit(run_demo())
