"""`python -m drflow.devtools.dag_runs DAG_ID...`: real Airflow runs of several DAGs, one after another, in one process.

What `airflow dags test` does for each DAG (`dag.test()` of the DAG parsed from the DAGs folder; a failed run
fails), without paying Airflow's start-up, the in-process execution API's start-up and a parse once per DAG:
`make demo` spent most of its time there. Airflow's environment (AIRFLOW_HOME, the metadata database …) must
be set before this process starts. One line per finished DAG goes to stdout as ``RESULT {json}`` (its dag_id,
run_id, state and seconds); everything else is Airflow's log. Each task's log is also written where a worker
would write it (`drflow.devtools.task_logs`), so the UI of `make airflow` shows it.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

RESULT_PREFIX = "RESULT "


def run_dags(dag_ids: list[str]) -> int:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    from drflow.devtools.task_logs import install

    install()
    bag = DagBag()  # the configured DAGs folder, parsed once (dag.test() syncs it to the metadata DB itself)
    missing = [dag_id for dag_id in dag_ids if dag_id not in bag.dags]
    if missing:
        errors = "; ".join(f"{path}: {error}" for path, error in bag.import_errors.items())
        print(f"DAGs {', '.join(missing)} are not in {bag.dag_folder}" + (f" ({errors})" if errors else ""))
        return 1
    for dag_id in dag_ids:
        started = time.monotonic()
        run = bag.dags[dag_id].test(logical_date=datetime.now(UTC))
        state = str(getattr(run, "state", None) or "unknown")
        result = {
            "dag_id": dag_id,
            "run_id": getattr(run, "run_id", None),
            "state": state,
            "seconds": round(time.monotonic() - started, 2),
        }
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        if run is None or run.state != DagRunState.SUCCESS:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run_dags(sys.argv[1:]))
