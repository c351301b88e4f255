"""drflow: every Airflow DAG compiled from the YAML specs in plan_specs/ (or $DRFLOW_SPECS_DIR).

A spec that does not validate becomes a `dr.<file>.spec-error` DAG showing its errors; the DAGs of
the other specs load as usual, and the DAGs of its last version that validated stay loaded, tagged
`stale-spec` (copies kept in $DRFLOW_LAST_GOOD_DIR, default $AIRFLOW_HOME/drflow/last-good).
Nothing here touches a database, the network or a Variable.
"""

import os
from pathlib import Path

from drflow.render.airflow import render_specs
from drflow.spec.last_good import default_dir

SPECS_DIR = Path(os.environ.get("DRFLOW_SPECS_DIR") or Path(__file__).resolve().parent.parent / "plan_specs")

globals().update(render_specs([SPECS_DIR], last_good=default_dir()))
