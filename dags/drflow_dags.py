"""drflow: every Airflow DAG compiled from the YAML specs in plan_specs/ (or $DRFLOW_SPECS_DIR).

A spec that does not validate becomes a `dr.<file>.spec-error` DAG showing its errors; the DAGs of
the other specs load as usual, and the DAGs of its last version that validated stay loaded, tagged
`stale-spec` (copies kept in $DRFLOW_LAST_GOOD_DIR, default $AIRFLOW_HOME/drflow/last-good).
When Airflow parses this file to run a task, only that task's DAG is built; compiled specs are cached
by content ($DRFLOW_PLAN_CACHE_DIR, default $AIRFLOW_HOME/drflow/plan-cache).
Nothing here touches a database, the network or a Variable.
"""

import os
from pathlib import Path

from drflow.render.airflow import render_dag_file

SPECS_DIR = Path(os.environ.get("DRFLOW_SPECS_DIR") or Path(__file__).resolve().parent.parent / "plan_specs")

globals().update(render_dag_file([SPECS_DIR]))
