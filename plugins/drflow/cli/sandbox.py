"""`drflow sandbox …`: start, stop and show the local primary + replica PostgreSQL and moto S3."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from drflow.cli.common import err, friendly_errors, out

sandbox_app = typer.Typer(help="A local primary + replica PostgreSQL and a moto S3 server for trying drflow.")


@sandbox_app.command("up")
@friendly_errors
def sandbox_up(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Start the sandbox (idempotent) and print the Airflow connections as AIRFLOW_CONN_* exports."""
    from drflow.devtools.sandbox.control import sandbox_up as up

    state = up()
    _print_sandbox(state, as_json)


@sandbox_app.command("down")
@friendly_errors
def sandbox_down(
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the sandbox data.")] = False,
) -> None:
    """Stop the sandbox servers."""
    from drflow.devtools.sandbox.control import sandbox_down as down

    down(purge=purge)
    out.print("sandbox stopped" + (" and purged" if purge else ""))


@sandbox_app.command("status")
@friendly_errors
def sandbox_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show what runs in the sandbox."""
    from drflow.devtools.sandbox.control import sandbox_status as status

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
    if state.get("demo_files") or state.get("ebs_volumes"):
        files = ", ".join(f"{c} {n} files" for c, n in state.get("demo_files", {}).items())
        volumes = ", ".join(f"{c} {' '.join(v)}" for c, v in state.get("ebs_volumes", {}).items())
        line = f"  demo file trees: {files or '-'}; EBS volumes (moto): {volumes or '-'}"
        err.print(line, highlight=False, markup=False)
    if not postgres.get("primary", {}).get("running"):
        err.print("  start it with: drflow sandbox up", highlight=False, markup=False)
        return
    for name, value in state.get("connections", {}).items():
        print(f"export {name}='{value}'")
