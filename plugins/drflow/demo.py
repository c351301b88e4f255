"""`make demo`: sandbox up, demo data, a backup DAG and a restore drill through Airflow, then a report."""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Console

from drflow.airflow_env import PROJECT_ROOT, airflow_command, local_airflow_env, migrate

SPEC = PROJECT_ROOT / "plan_specs" / "api-marketplace.yaml"
DEMO_COMPONENTS = ("user-database", "billing")

console = Console(width=None if Console().is_terminal else 160)


def _run_dag(dag_id: str, env: dict[str, str]) -> float:
    console.print(f"[bold]airflow dags test {dag_id}[/bold]")
    started = time.monotonic()
    result = airflow_command(["dags", "test", dag_id], env, check=False)
    elapsed = time.monotonic() - started
    log = Path(env["AIRFLOW_HOME"]) / f"demo-{dag_id}.log"
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0 or "state=failed" in result.stdout + result.stderr:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise SystemExit(f"{dag_id} failed (exit {result.returncode}); full log in {log}\n{tail}")
    console.print(f"  finished in {elapsed:.1f}s (log: {log})")
    return elapsed


def run_demo() -> int:
    from drflow.jobs.backup import target_catalogs
    from drflow.sandbox.control import sandbox_root, sandbox_up
    from drflow.spec.load import load_spec
    from drflow.spec.types import format_duration

    console.rule("drflow demo: sandbox")
    state = sandbox_up(SPEC)
    os.environ.update(state["connections"])
    console.print(
        f"primary :{state['postgres']['primary']['port']}, replica :{state['postgres']['replica']['port']}, "
        f"S3 {state['s3']['endpoint_url']} buckets {', '.join(state['s3']['buckets'])}"
    )
    console.print(f"demo rows: {state['demo_data']}")

    env = {**local_airflow_env(sandbox_root() / "airflow"), **state["connections"]}
    migrate(env)

    spec = load_spec(SPEC).spec
    rows = []
    for name in DEMO_COMPONENTS:
        component = spec.component(name)
        console.rule(f"{component.title}: backup and restore drill")
        policy = component.backup_policies[0]
        drill = component.drills[0]
        _run_dag(f"dr.{spec.metadata.name}.{name}.backup.{policy.name}", env)
        _run_dag(f"dr.{spec.metadata.name}.{name}.drill.{drill.name}", env)
        target = spec.target(drill.target or policy.targets[0]).model_dump(mode="json")
        [(_, catalog)] = target_catalogs(spec.metadata.name, [target])
        report = catalog.read_reports(name, "drill")[-1]
        manifest = catalog.get(name, report["backup_id"])
        rows.append((component, manifest, report))

    console.rule("drflow demo: report")
    for component, manifest, report in rows:
        checks = report["checks"]
        mark = {True: "[green]✔[/green]", False: "[red]✘[/red]"}
        console.print(
            f"[bold]{component.title}[/bold] ({component.criticality}): backup {manifest.backup_id}, "
            f"{(manifest.database_size_bytes or 0) / 2**20:.1f} MiB of data stored as "
            f"{manifest.stored_bytes / 2**20:.1f} MiB in {manifest.duration_s:.1f}s "
            f"into {', '.join(manifest.targets)}"
        )
        console.print(
            f"  restore drill: {report['restore_s']:.1f}s against an RTO of {format_duration(component.rto)} "
            f"{mark[report['rto_met']]}; backup age {report['backup_age_s']:.0f}s against an RPO of "
            f"{format_duration(component.rpo)} {mark[report['rpo_met']]}; checks "
            f"{sum(c['passed'] for c in checks)}/{len(checks)} passed → "
            + ("[green]PASSED[/green]" if report["passed"] else "[red]FAILED[/red]")
        )
    console.print(
        "Catalog: drflow backups list --spec plan_specs/api-marketplace.yaml "
        "(with the exports of `drflow sandbox up`). Airflow UI: make airflow"
    )
    return 0 if all(r[2]["passed"] for r in rows) else 1
