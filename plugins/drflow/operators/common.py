"""Shared helpers of drflow operators: building runtime objects from plain plan parameters."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from drflow.store.manifest import BackupManifest


def backup_id_for_run(policy: str, run_id: str, run_after: datetime) -> str:
    """Stable for every try of one DAG run, distinct between runs (even two manual runs in one second)."""
    from drflow.store.manifest import make_backup_id

    return f"{make_backup_id(policy, run_after)}-{hashlib.sha1(run_id.encode()).hexdigest()[:6]}"


def manifest_summary(manifest: BackupManifest) -> dict[str, Any]:
    """What a task hands the next one through XCom: small, JSON, enough to find the backup again."""
    return {
        "backup_id": manifest.backup_id,
        "component": manifest.component,
        "policy": manifest.policy,
        "finished_at": manifest.finished_at.isoformat(),
        "duration_s": manifest.duration_s,
        "start_lsn": manifest.start_lsn,
        "end_lsn": manifest.end_lsn,
        "database_size_bytes": manifest.database_size_bytes,
        "stored_bytes": manifest.stored_bytes,
        "targets": list(manifest.targets),
    }


def upstream_result(context: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    value = context["ti"].xcom_pull(task_ids=task_id)
    if not isinstance(value, dict):
        raise RuntimeError(f"task {task_id!r} left no result in XCom; clear it and run it again")
    return value


def publish_note(context: Mapping[str, Any], note: str, conn_id: str | None, log: Any) -> bool:
    """The run's outcome as its note in the Airflow UI, and in this task's log; never fails the task."""
    from drflow.audit.api import AuditError
    from drflow.audit.notes import notes_api, set_run_note

    log.info("run note:\n%s", note)
    dag_run = context.get("dag_run")
    if dag_run is None:  # run outside a DAG run (a test, a direct call): nothing to annotate
        return False
    try:
        set_run_note(notes_api(conn_id), dag_run.dag_id, dag_run.run_id, note)
    except AuditError as exc:
        log.warning("the run's note was not written: %s. The summary above is also in this task's XCom", exc)
        return False
    return True
