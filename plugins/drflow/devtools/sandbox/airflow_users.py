"""The local Airflow's users (`make airflow`) and the read-only connection the recovery record reads its API with."""

from __future__ import annotations

import json

AIRFLOW_PORT = 8080
# user -> (role, password): development passwords of the sandbox's own Airflow, printed by `make airflow`.
USERS = {
    "admin": ("admin", "drflow-admin"),
    "oncall": ("op", "drflow-oncall"),
    "auditor": ("viewer", "drflow-auditor"),
    "drflow": ("user", "drflow-notes"),  # writes run notes (may edit DAG runs)
}


def api_connection(user: str, port: int = AIRFLOW_PORT) -> str:
    """An http connection to the local Airflow's REST API as ``user``."""
    return json.dumps(
        {"conn_type": "http", "host": f"http://127.0.0.1:{port}", "login": user, "password": USERS[user][1]}
    )


def audit_connection(port: int = AIRFLOW_PORT) -> str:
    """``AIRFLOW_CONN_DRFLOW_AIRFLOW_API``: the auditor on the local Airflow's REST API."""
    return api_connection("auditor", port)


def notes_connection(port: int = AIRFLOW_PORT) -> str:
    """``AIRFLOW_CONN_DRFLOW_AIRFLOW_NOTES``: the user tasks write run notes as."""
    return api_connection("drflow", port)
