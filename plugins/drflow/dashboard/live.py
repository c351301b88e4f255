"""What Airflow's REST API says now, read as the user who opened the dashboard (their token, their rights).

Open runs of recovery plans and restore DAGs, approvals waiting for a person, and drill runs that failed
without writing a report (a restore that broke before its checks): the store cannot show those.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from drflow.audit.api import AuditError, get_all
from drflow.contracts.metrics import MetricsRun
from drflow.metrics.html import Live, RunLink

OPEN_STATES = ("queued", "running")
HITL_PATH = "/api/v2/dags/~/dagRuns/~/hitlDetails"


class TokenApi:
    """GETs against the api-server with a user's own token (the ``ApiClient`` the audit module reads with)."""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        import requests

        try:
            response = requests.get(
                f"{self.base_url}{path}",
                params=params,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise AuditError(f"cannot reach Airflow's REST API at {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise AuditError(f"Airflow's REST API answered GET {path} with {response.status_code}")
        return response.json()


def _owners(runs: Sequence[MetricsRun]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """DAG id → the components it recovers (plans, restores); drill DAG id → its component."""
    recovering: dict[str, list[str]] = defaultdict(list)
    drills: dict[str, str] = {}
    for run in runs:
        for component in run.components:
            for dag_id in (*component.plans, f"dr.{run.spec_name}.{component.name}.restore"):
                recovering[dag_id].append(component.name)
            for drill in component.drills:
                drills[drill.dag_id] = component.name
    return recovering, drills


def read_live(runs: Sequence[MetricsRun], api: TokenApi, ui_root: str) -> Live:
    live = Live(ui_root=ui_root)
    recovering, drills = _owners(runs)
    try:
        open_runs = get_all(
            api, "/api/v2/dags/~/dagRuns", "dag_runs", {"state": list(OPEN_STATES), "dag_id_prefix_pattern": "dr."}
        )
        waiting = get_all(
            api,
            "/api/v2/dags/~/dagRuns/~/hitlDetails",
            "hitl_details",
            {"response_received": False, "dag_id_prefix_pattern": "dr."},
        )
        drill_runs = api.get(
            "/api/v2/dags/~/dagRuns",
            {"dag_id_pattern": ".drill.", "order_by": "-run_after", "limit": 100},
        ).get("dag_runs", [])
    except AuditError as exc:
        live.error = f"Airflow's REST API could not be read: {exc}"
        return live
    for run in open_runs:
        for component in recovering.get(run["dag_id"], []):
            since = str(run.get("start_date") or run.get("queued_at"))[:16]
            text = f"{run['dag_id'].rsplit('.', 1)[-1]} {run['state']} since {since}"
            live.open_runs.setdefault(component, []).append(RunLink(run["dag_id"], run["dag_run_id"], text))
    for hitl in waiting:
        ti = hitl.get("task_instance") or {}
        for component in recovering.get(str(ti.get("dag_id")), []):
            text = f"{ti.get('task_id')}: {hitl.get('subject') or 'waiting for an answer'}"
            live.approvals.setdefault(component, []).append(RunLink(str(ti["dag_id"]), ti.get("dag_run_id"), text))
    newest: dict[str, dict[str, Any]] = {}
    for run in drill_runs:
        newest.setdefault(run["dag_id"], run)
    for dag_id, run in newest.items():
        if run.get("state") == "failed" and dag_id in drills:
            text = f"{dag_id.rsplit('.', 1)[-1]} run {run['dag_run_id']} failed at {str(run.get('end_date'))[:16]}"
            live.failed_drills.setdefault(drills[dag_id], []).append(RunLink(dag_id, run["dag_run_id"], text))
    return live
