"""Parsing at scale: what drflow's DAG file costs one task, and a full parse, with 1, 100 and 1,000 specs.

For each N: N copies of plan_specs/api-marketplace.yaml (distinct metadata.name) in a temp dir, with a plan
cache, last-good directory and AIRFLOW_HOME of their own. Every measurement runs in a fresh interpreter that
imports what Airflow's task runner has imported before it parses (airflow.sdk, the task runner, DagBag), then
loads `dags/drflow_dags.py` through Airflow's DagBag, as the task runner and the DAG processor do:

  full parse   no parsing context: every spec's DAGs. First with an empty plan cache (cold: every spec
               compiled, what every parse cost before the cache), then again (warm: the DAG processor's
               steady state). Wall, CPU and the peak RSS of the process (ru_maxrss) beside its RSS before.
  task load    `_AIRFLOW_PARSING_CONTEXT_DAG_ID` names the region-failover plan of the middle copy, as the
               task runner sets it: the file builds that DAG only, from the one spec file the cache's index
               names. Best of R runs, after the full parses (the DAG processor always parses first).

Airflow's own import timeouts are switched off here (AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT=0): a full parse of
1,000 specs takes longer than the default 30 s (see README, "Add drflow to your Airflow").
Usage: .venv/bin/python benchmarks/parse.py --scale-only [--scale 1,100,1000] [--scale-repeat 5]
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DAG_FILE = REPO / "dags" / "drflow_dags.py"
SPEC_FILE = REPO / "plan_specs" / "api-marketplace.yaml"
TARGET_RATIO = 1.2
CONTEXT = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"


def write_specs(specs: Path, count: int) -> list[str]:
    """`count` copies of the example spec, named s0000 …, each on its own primary; returns their names.

    Own primaries (connection drflow_pg_primary_s0000 …), as 1,000 services would have: on one primary the
    copies' default WAL slot names, which carry 6 hex digits of the spec name, may collide (about a 3 % chance
    among 1,000 names), and validation then rightly refuses the later spec.
    """
    text = SPEC_FILE.read_text(encoding="utf-8")
    pattern = re.compile(r"^(metadata:\n  name: )api-marketplace$", re.MULTILINE)
    if len(pattern.findall(text)) != 1:
        raise SystemExit(f"cannot find 'metadata:\\n  name: api-marketplace' exactly once in {SPEC_FILE}")
    names = [f"s{i:04d}" for i in range(count)]
    specs.mkdir(parents=True)
    for name in names:
        copy = pattern.sub(rf"\g<1>{name}", text).replace(
            "conn_id: drflow_pg_primary\n", f"conn_id: drflow_pg_primary_{name}\n"
        )
        (specs / f"{name}.yaml").write_text(copy, encoding="utf-8")
    return names


def environment(root: Path, dag_id: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "DRFLOW", CONTEXT))}
    env.update(
        AIRFLOW_HOME=str(root / "airflow-home"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="0",
        DRFLOW_SPECS_DIR=str(root / "specs"),
        DRFLOW_PLAN_CACHE_DIR=str(root / "plan-cache"),
        DRFLOW_LAST_GOOD_DIR=str(root / "last-good"),
    )
    if dag_id:
        env[CONTEXT] = dag_id
    return env


def worker() -> dict[str, Any]:
    """In a fresh interpreter: the task runner's imports, then the DAG file through DagBag, timed."""
    import airflow.sdk  # noqa: F401
    import airflow.sdk.execution_time.task_runner  # noqa: F401
    from airflow.dag_processing.dagbag import DagBag

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=str(DAG_FILE))
    elapsed = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    return {
        **elapsed,
        "dags": len(bag.dag_ids),
        "dag_ids": sorted(bag.dag_ids)[:3],
        "errors": {str(k): str(v)[-500:] for k, v in bag.import_errors.items()},
        "rss_before_mib": rss_before / 1024,
        "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_worker(root: Path, dag_id: str | None) -> dict[str, Any]:
    argv = [sys.executable, str(REPO / "benchmarks" / "parse.py"), "--scale-worker"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=environment(root, dag_id), cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"parse worker failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise SystemExit(f"the DAG file did not load: {result['errors']}")
    return result


def measure(counts: list[int], repeat: int) -> None:
    """Print the full parses and the per-task loads for every count, and the per-task ratio against its target."""
    # Bytecode as after `make install` (compiled at install): a module edited since would be compiled in every run.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "plugins"), str(REPO / "dags")], check=True)
    tasks: dict[int, list[dict[str, Any]]] = {}
    for count in counts:
        root = Path(tempfile.mkdtemp(prefix=f"drflow-bench-scale-{count}-"))
        try:
            names = write_specs(root / "specs", count)
            for state in ("cold", "warm"):
                full = run_worker(root, None)
                print(
                    f"{count:>5} specs  full parse ({state} plan cache) {full['dags']:>6} DAGs  "
                    f"{full['wall']:7.2f} s wall {full['cpu']:7.2f} s CPU  "
                    f"peak RSS {full['rss_peak_mib']:6.0f} MiB (before the parse {full['rss_before_mib']:.0f} MiB)",
                    flush=True,
                )
            wanted = f"dr.{names[count // 2]}.plan.region-failover"
            tasks[count] = []
            for _ in range(repeat):
                task = run_worker(root, wanted)
                if task["dag_ids"] != [wanted]:
                    raise SystemExit(f"a task's parse built {task['dag_ids']}, expected only {wanted}")
                tasks[count].append(task)
            walls = ", ".join(f"{t['wall'] * 1000:.0f}" for t in tasks[count])
            print(
                f"{count:>5} specs  one task's parse ({wanted}): best {_best(tasks[count], 'wall') * 1000:6.0f} ms "
                f"wall {_best(tasks[count], 'cpu') * 1000:6.0f} ms CPU; every run, wall ms: {walls}",
                flush=True,
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)
    low, high = min(counts), max(counts)
    for clock in ("cpu", "wall") if low != high else ():
        ratio = _best(tasks[high], clock) / _best(tasks[low], clock)
        print(
            f"one task's parse, {high} specs / {low} spec(s) ({clock}): {ratio:.2f} "
            f"(target <= {TARGET_RATIO}: {'OK' if ratio <= TARGET_RATIO else 'ABOVE TARGET'})"
        )


def _best(runs: list[dict[str, Any]], clock: str) -> float:
    return min(run[clock] for run in runs)
