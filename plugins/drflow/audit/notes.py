"""Run notes: the outcome of a drill, a report or a recovery plan, where the Airflow UI shows it with the run.

Airflow renders a run's note as Markdown beside the run; a task cannot set it through its own context, so
drflow writes it through the public REST API (``PATCH …/dagRuns/{run}``, field ``note``) as a user that may
edit DAG runs: the http connection ``drflow_airflow_notes`` (the spec's ``defaults.notes_conn_id`` names
another). A note is a courtesy: when it cannot be written the task says why in its log and goes on.
"""

from __future__ import annotations

from typing import Any

from drflow.audit.api import AirflowApi, AuditError, q

DEFAULT_NOTES_CONN_ID = "drflow_airflow_notes"
NOTE_LIMIT = 1000
"""Airflow keeps at most 1000 characters of a run's note."""


def fit_note(text: str, limit: int = NOTE_LIMIT) -> str:
    """The note cut to Airflow's limit on a line boundary where it can be, marked as cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 2]
    if "\n" in cut[limit // 2 :]:
        cut = cut[: cut.rindex("\n")]
    return cut.rstrip() + "\n…"


def notes_api(conn_id: str | None) -> AirflowApi:
    from airflow.sdk import BaseHook

    name = conn_id or DEFAULT_NOTES_CONN_ID
    try:
        conn = BaseHook.get_connection(name)
    except Exception as exc:
        raise AuditError(
            f"no Airflow connection {name!r} to write the run's note ({exc}); create an http connection {name!r} "
            "with the api-server's base URL as host and the login and password of a user that may edit DAG runs "
            "(role User in the simple auth manager), or set defaults.notes_conn_id in the spec"
        ) from exc
    return AirflowApi.from_fields(name, conn)


def set_run_note(api: AirflowApi, dag_id: str, run_id: str, note: str) -> Any:
    """Replace the run's note with ``note`` (cut to Airflow's limit)."""
    path = f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id)}"
    return api.patch(path, {"note": fit_note(note)}, params={"update_mask": "note"})
