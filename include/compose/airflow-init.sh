#!/bin/bash
# airflow-init: what every other Airflow service waits for. The metadata database migrated, and the password
# file of Airflow's simple auth manager written from the environment (.env) into the state volume they share.
set -euo pipefail

python - <<'PY'
import json
import os
from pathlib import Path

users = {"admin": "DRFLOW_ADMIN_PASSWORD", "oncall": "DRFLOW_ONCALL_PASSWORD", "auditor": "DRFLOW_AUDITOR_PASSWORD"}
path = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps({user: os.environ[variable] for user, variable in users.items()}))
path.chmod(0o600)
PY
airflow db migrate
airflow version
