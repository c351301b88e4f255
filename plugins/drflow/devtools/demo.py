"""`make demo`: sandbox up, demo data, backup DAGs and restore drills run by Airflow (`dag.test()`), a report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from drflow.devtools.airflow_env import PROJECT_ROOT, local_airflow_env, migrate
from drflow.devtools.dag_runs import RESULT_PREFIX
from drflow.devtools.demo_report import DemoRun, lines, read_result

SPEC = PROJECT_ROOT / "plan_specs" / "api-marketplace.yaml"
# One backup and its drill per component, at least one of each source type (issue 9): databases, file
# storage (the portal's assets tree) and a system image (analytics' EBS volume).
DEMO_RUNS = (
    DemoRun("user-database", "daily-full", "weekly-restore"),
    DemoRun("billing", "daily-full", "weekly-restore"),
    DemoRun("portal-assets", "daily-full", "weekly-tree"),
    DemoRun("analytics", "weekly-snapshot", "weekly-volume"),
)
# Configuration after each change (issue 9): one config backup and its drill, through Airflow too.
DEMO_CONFIG_COMPONENTS = ("api-gateway",)

console = Console(width=None if Console().is_terminal else 160)


def _run_dags(dag_ids: list[str], env: dict[str, str]) -> None:
    """Real Airflow runs (`dag.test()`), all in one process: Airflow starts once, not once per DAG."""
    log = Path(env["AIRFLOW_HOME"]) / "demo-dag-runs.log"
    console.print(f"[bold]dag.test() of {len(dag_ids)} DAGs in one Airflow process[/bold] (log: {log})")
    started = time.monotonic()
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "drflow.devtools.dag_runs", *dag_ids],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            sink.write(line)
            if line.startswith(RESULT_PREFIX):
                result = json.loads(line[len(RESULT_PREFIX) :])
                mark = "[green]✔[/green]" if result["state"] == "success" else "[red]✘[/red]"
                console.print(f"  {mark} {result['dag_id']}: {result['state']} in {result['seconds']:.1f}s")
        code = process.wait()
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise DemoError(f"an Airflow run failed (exit {code}); full log in {log}\n{tail}")
    console.print(f"  all runs finished in {time.monotonic() - started:.1f}s, Airflow start-up included")
    console.print(f"  their task logs: in the UI of `make airflow` (each run's tasks), or under {log.parent / 'logs'}")


def _config_report(spec: Any, name: str) -> None:
    """The config versions the demo's config backup left, read back from the store."""
    from drflow.jobs.config import component_versions
    from drflow.units import human_size

    component = spec.component(name)
    settings = component.config
    target = spec.target(settings.targets[0]).model_dump(mode="json")
    versions = component_versions(spec.metadata.name, name, target).versions()
    newest = versions[-1]
    console.print(
        f"[bold]{component.title}[/bold] config ({settings.path}): {len(versions)} version(s), newest "
        f"{newest.version_id}, {len(newest.files)} files, {human_size(newest.size)}, sha256 {newest.sha256[:16]}… "
        f"in {', '.join(settings.targets)}; drill restored it with the same hash and check-routes.sh passed. "
        f"History: drflow config history --spec plan_specs/api-marketplace.yaml --component {name}"
    )


class DemoError(RuntimeError):
    """A step of the demo failed; the message names the log to read."""


def run_demo() -> int:
    from drflow.devtools.sandbox.control import sandbox_root, sandbox_up
    from drflow.spec.load import load_spec

    console.rule("drflow demo: sandbox")
    state = sandbox_up(SPEC)
    os.environ.update(state["connections"])
    console.print(
        f"primary :{state['postgres']['primary']['port']}, replica :{state['postgres']['replica']['port']}, "
        f"S3 {state['s3']['endpoint_url']} buckets {', '.join(state['s3']['buckets'])}"
    )
    console.print(f"demo rows: {state['demo_data']}")
    console.print(f"demo files: {state['demo_files']}; EBS volumes: {state['ebs_volumes']}")

    env = {**local_airflow_env(sandbox_root() / "airflow"), **state["connections"]}
    migrate(env)

    spec = load_spec(SPEC).spec
    titles = ", ".join(spec.component(run.component).title for run in DEMO_RUNS)
    console.rule(f"drflow demo: backup and drill of {titles}")
    dag_ids = [dag_id for run in DEMO_RUNS for dag_id in run.dag_ids(spec.metadata.name)]
    for name in DEMO_CONFIG_COMPONENTS:
        dag_ids += [f"dr.{spec.metadata.name}.{name}.backup.config", f"dr.{spec.metadata.name}.{name}.drill.config"]
    _run_dags(dag_ids, env)

    results = [read_result(spec, run) for run in DEMO_RUNS]
    console.rule("drflow demo: report")
    for result in results:
        for line in lines(result):
            console.print(line)
    for name in DEMO_CONFIG_COMPONENTS:
        _config_report(spec, name)
    console.print(
        "Catalog: drflow backups list --spec plan_specs/api-marketplace.yaml; compliance evidence: "
        "drflow compliance-report --spec plan_specs/api-marketplace.yaml "
        "(with the exports of `drflow sandbox up`). Airflow UI: make airflow"
    )
    return 0 if all(r.passed for r in results) else 1
