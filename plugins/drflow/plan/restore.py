"""Restore DAGs: one per component with a datastore and backups (kind `restore`), triggered by hand.

The trigger form takes the backup, a target time or LSN for point-in-time recovery, the directory
to restore into and whether to leave the server running. `plan_restore` checks the form and the
store's recoverable range and fails before anything is touched.
"""

from __future__ import annotations

from drflow.plan.common import backup_id_param, common_fields, dag_id, datastore_params, objectives, targets_params
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.spec.model import Component, Spec

KIND_RESTORE = "restore"
LSN_PATTERN = r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$"


# What this DAG restores: pg_basebackup full backups, plus pg_receivewal WAL for a point in time.
RESTORABLE_METHODS = frozenset({"pg_basebackup", "pg_receivewal"})


def restore_target_names(component: Component) -> list[str]:
    names: list[str] = []
    for policy in component.backup_policies:
        if policy.method in RESTORABLE_METHODS:
            names.extend(name for name in policy.targets if name not in names)
    return names


def restore_plan(spec: Spec, component: Component, source: str) -> DagPlan | None:
    """The restore DAG of a component with pg_basebackup backups; None for any other component."""
    if component.postgres is None or not any(p.method == "pg_basebackup" for p in component.backup_policies):
        return None
    base = datastore_params(spec, component)
    names = restore_target_names(component)
    store = {"spec_name": spec.metadata.name, "component": component.name, "targets": targets_params(spec, names)}
    plan = TaskPlan(
        task_id="plan_restore",
        action="store.plan_restore",
        doc="Check the trigger form (an empty or new `restore_to`, at most one of `target_time` and `target_lsn`, "
        "a timezone on the time) and find the full backup and WAL that reach the target; fail, with the exact "
        "recoverable range, before anything is touched.",
        params=store,
        retries=0,
    )
    restore = TaskPlan(
        task_id="restore",
        action="postgres.restore",
        doc="Fetch and verify (sha256) the base backup and WAL, lay them out in `restore_to`, replay the WAL up to "
        "the target and promote; stop the server afterwards unless `start`. A failed try empties `restore_to`.",
        params={**store, "bin_dir": base["bin_dir"], "work_dir": spec.defaults.work_dir},
        upstream=("plan_restore",),
    )
    verify = TaskPlan(
        task_id="verify_restored",
        action="postgres.verify_restored",
        doc="Connect to the restored server (when `start`), check it accepts writes and report the last replayed "
        "commit time and LSN; fail if recovery went past the target.",
        params={"database": base["database"]},
        upstream=("restore",),
        retries=1,
    )
    doc = (
        f"# Restore {component.title}\n\n{objectives(component)}\n\n"
        "Trigger with the form: leave `target_time` and `target_lsn` empty to restore a full backup as it is "
        "(`backup_id`, or the newest), or give one of them to recover to that point from a full backup plus "
        "the archived WAL. `restore_to` is a directory on the worker host; it must be new or empty.\n\n"
        f"Without Airflow: `drflow restore --spec {source} --component {component.name} --to DIR "
        "[--target-time T | --target-lsn L]`."
    )
    return DagPlan(
        dag_id=dag_id(spec, component, "restore"),
        kind=KIND_RESTORE,
        schedule=None,
        description=f"restore {component.title} (full backup or point in time)",
        doc_md=doc,
        tasks=(plan, restore, verify),
        params={
            "backup_id": backup_id_param(
                "Optional: the full backup to restore (or recover from); empty: the newest that reaches the target."
            ),
            "target_time": {
                "default": None,
                "type": ["null", "string"],
                "format": "date-time",
                "title": "Target time",
                "description": "Optional: recover to this moment from a full backup and the archived WAL.",
            },
            "target_lsn": {
                "default": None,
                "type": ["null", "string"],
                "pattern": LSN_PATTERN,
                "title": "Target LSN",
                "description": "Optional: recover to this WAL position instead, e.g. 0/3000100.",
            },
            "restore_to": {
                "default": None,
                "type": ["null", "string"],
                "title": "Restore into",
                "description": "Absolute path of a new or empty directory on the worker host (required: "
                "plan_restore refuses an empty one before anything is touched).",
            },
            "start": {
                "default": False,
                "type": "boolean",
                "title": "Start the server",
                "description": "Leave PostgreSQL running on the restored data (on a free port).",
            },
            "storage_target": {
                "default": names[0],
                "type": "string",
                "enum": names,
                "title": "Storage target",
                "description": "Storage target to restore from.",
            },
        },
        **common_fields(spec, component, source),
    )
