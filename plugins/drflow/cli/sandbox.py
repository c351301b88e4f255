"""`drflow sandbox …`: start, stop, show and reset the local primary + replica PostgreSQL and moto S3."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

import typer

from drflow.cli.common import err, fail, friendly_errors, out

sandbox_app = typer.Typer(help="A local primary + replica PostgreSQL and a moto S3 server for trying drflow.")

F = TypeVar("F", bound=Callable[..., Any])
EVAL_FAILS = "echo 'drflow sandbox: nothing was exported (see the error above)' >&2; false"
"""What a failed `up`/`reset` prints on stdout when it is captured: `eval "$(drflow sandbox up)"` then says
so and returns 1, instead of running nothing and returning 0."""


def exports_or_failure(command: F) -> F:
    """A command whose stdout is shell exports: on failure, a captured stdout gets a line that fails `eval`."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except typer.Exit as exc:
            if exc.exit_code and not sys.stdout.isatty():
                print(EVAL_FAILS)
            raise
        except Exception:
            if not sys.stdout.isatty():
                print(EVAL_FAILS)
            raise

    return cast(F, wrapper)


@sandbox_app.command("up")
@exports_or_failure
@friendly_errors
def sandbox_up(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Start the sandbox (idempotent) and print the Airflow connections as AIRFLOW_CONN_* exports.

    Refuses (exit 1, nothing exported) when the servers are not a writable primary with a replica streaming
    from it, as after a failover drill: `drflow sandbox reset` brings that back."""
    from drflow.devtools.sandbox.control import sandbox_up as up

    _print_sandbox(up(), as_json, exports_required=True)


@sandbox_app.command("reset")
@exports_or_failure
@friendly_errors
def sandbox_reset(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """After a failover drill: a writable primary with a streaming replica again (failing back with pg_rewind,
    keeping the newest data), the DNS records as `up` made them, the demo data; then what `up` prints."""
    from drflow.devtools.sandbox.control import sandbox_reset as reset

    state = reset()
    if not as_json:
        done = state["reset"]
        took = f" ({done['seconds']}s)" if "seconds" in done else ""
        err.print(f"sandbox reset{took}:", highlight=False, markup=False)
        for step in done["steps"]:
            err.print(f"  - {step}", highlight=False, markup=False)
    _print_sandbox(state, as_json, exports_required=True)


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
    """Show what runs in the sandbox and what each server really is (primary or standby, fenced, writable)."""
    from drflow.devtools.sandbox.control import sandbox_status as status

    _print_sandbox(status(), as_json)


def _print_sandbox(state: dict[str, Any], as_json: bool, *, exports_required: bool = False) -> None:
    """Exports on stdout (for `eval "$(drflow sandbox up)"`), a summary for people on stderr."""
    from drflow.devtools.sandbox.roles import RESET_HINT, describe

    if as_json:
        out.print_json(json.dumps(state, default=str))
        return
    postgres = state.get("postgres", {})
    s3 = state.get("s3", {})

    def say(line: str) -> None:
        err.print(line, highlight=False, markup=False)

    s3_running = s3.get("running", bool(s3.get("buckets")))
    say(f"sandbox in {state['root']} (set DRFLOW_SANDBOX_DIR to use another)")
    roles = postgres.get("roles")
    if roles:
        for name in ("primary", "replica"):
            say(f"  {name} (127.0.0.1:{roles[name]['port']}): {describe(roles[name])}")
        all_stopped = all(roles[name]["role"] == "stopped" for name in ("primary", "replica"))
        for problem in [] if all_stopped else roles.get("problems", []):
            say(f"  ! {problem}")
        if roles.get("problems") and not all_stopped:
            say(f"  {RESET_HINT}")
    else:
        say("  primary: not running; replica: not running (no sandbox yet)")
    say(
        f"  S3 (moto): {'running at ' + s3['endpoint_url'] if s3_running else 'not running'}"
        + (f", buckets {', '.join(s3['buckets'])}" if s3.get("buckets") else "")
    )
    if state.get("demo_files") or state.get("ebs_volumes"):
        files = ", ".join(f"{c} {n} files" for c, n in state.get("demo_files", {}).items())
        volumes = ", ".join(f"{c} {' '.join(v)}" for c, v in state.get("ebs_volumes", {}).items())
        say(f"  demo file trees: {files or '-'}; EBS volumes (moto): {volumes or '-'}")
    if not postgres.get("primary", {}).get("running"):
        if exports_required:  # `up` checked the servers: only when the primary stopped since
            raise fail(f"the sandbox's primary stopped while it was being set up; {RESET_HINT}")
        if not roles or all_stopped:
            say("  start it with: drflow sandbox up")
        return
    for name, value in state.get("connections", {}).items():
        print(f"export {name}='{value}'")
