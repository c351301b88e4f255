"""The `restore` step of a recovery plan: bring a component's data back from the store and start it.

Which backup: the newest complete base backup; with `before_incident`, the newest one finished before
the trigger form's `incident_started_at`; with `point_in_time`, the form's `target_time` replayed from
archived WAL. Every object's sha256 and then `pg_verifybackup` are checked before the server starts.

The restored server runs on the worker (host `local`) on a free loopback port, in
`<work dir>/restored/<spec>/<component>/<run key>`, and keeps running after the task: it is the
recovered database. The XCom result names it (`restored`: host, port, user, dbname, data_directory),
so later steps — `validate_sql` with `node: restored` (its step dict names this task in `restored_by`),
a manual repoint step — find it without sharing a disk. A retry of the same run stops and removes what
an earlier try left and starts again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from drflow.contracts import PlanFacts, StepDefinition
from drflow.operators.step_base import PlanStepOperator
from drflow.spec.plans import RestoreAction
from drflow.store.manifest import BackupManifest

PITR_NEEDS_WAL = "point-in-time restore needs WAL archiving (policy method pg_receivewal)"


class RestoreRefused(RuntimeError):
    """The restore cannot go ahead; the message says why and what would unblock it."""


def parse_when(value: str, what: str) -> datetime:
    """A time from the trigger form: with a timezone and not in the future, else refused."""
    from drflow.when import parse_run_time

    try:
        return parse_run_time(value, what)
    except ValueError as exc:
        raise RestoreRefused(f"refused: {exc}; to proceed: trigger the plan again with it corrected") from None


def is_restorable(manifest: BackupManifest) -> bool:
    """A full pg_basebackup: what lay_out_backup can turn back into a data directory."""
    return manifest.backup_type == "full" and manifest.method == "pg_basebackup"


def pick_backup(manifests: Sequence[BackupManifest], *, before: datetime | None = None) -> BackupManifest:
    """The newest restorable backup, or the newest one that finished before `before`."""
    candidates = [m for m in manifests if is_restorable(m)]
    if before is not None:
        eligible = [m for m in candidates if m.finished_at < before]
        if not eligible:
            known = ", ".join(f"{m.backup_id} (finished {m.finished_at.isoformat()})" for m in candidates[-3:])
            raise RestoreRefused(
                f"refused: no complete backup finished before the incident began ({before.isoformat()}); "
                f"newest backups: {known or 'none'}; to proceed: check incident_started_at in the trigger form, "
                "or restore from another storage target that holds an older backup"
            )
        candidates = eligible
    if not candidates:
        raise RestoreRefused(
            "refused: the store holds no complete pg_basebackup backup of this component; to proceed: run its "
            "backup DAG, or restore from another storage target"
        )
    return max(candidates, key=lambda m: (m.finished_at, m.backup_id))


def choose_targets(step: RestoreAction, targets: Sequence[Mapping[str, Any]], component: str) -> list[dict[str, Any]]:
    """The targets to restore from, in order: the step's `target`, or every target (the first intact copy wins)."""
    if not targets:
        raise RestoreRefused(
            f"refused: component '{component}' has no backup policy, so there is nothing to restore from; "
            "to proceed: add a backup policy with a storage target to the spec"
        )
    wanted = step.target
    if not wanted:
        return [dict(t) for t in targets]
    for target in targets:
        if target["name"] == wanted:
            return [dict(target)]
    raise RestoreRefused(
        f"refused: storage target '{wanted}' receives no backups of '{component}'; to proceed: use one of "
        f"{', '.join(str(t['name']) for t in targets)}"
    )


def _restorable_in_any(catalogs: Sequence[tuple[str, Any]], component: str) -> list[BackupManifest]:
    """The backups of every readable target (a backup in one target is enough)."""
    from drflow.store.base import StoreError

    seen: dict[str, BackupManifest] = {}
    for name, catalog in catalogs:
        try:
            for manifest in catalog.list_backups(component):
                seen.setdefault(manifest.backup_id, manifest)
        except StoreError as exc:
            logging.getLogger(__name__).warning("skipped storage target %s: %s", name, exc)
    return sorted(seen.values(), key=lambda m: (m.finished_at, m.backup_id))


def restore_root(work_dir: str | None, spec: str, component: str, run_key: str) -> Path:
    from drflow.workdir import ensure_dirs, work_root

    # The db user must be able to traverse to its data and socket directories.
    return ensure_dirs(work_root(work_dir) / "restored" / spec / component / run_key, 0o755)


def clear_earlier_try(path: Path, host: Any, bin_dir: Path) -> None:
    """Stop a server an earlier try started here and remove what it left, so the retry starts clean."""
    data_dir = path / "data"
    if (data_dir / "postmaster.pid").exists():
        host.run(
            [str(bin_dir / "pg_ctl"), "stop", "-D", str(data_dir), "-m", "immediate", "-w"],
            as_db_user=True,
            check=False,
        )
    for child in ("data", "socket"):
        shutil.rmtree(path / child, ignore_errors=True)


def restore_component(
    *,
    step: StepDefinition,
    plan: PlanFacts,
    params: Mapping[str, Any],
    run_key: str,
) -> dict[str, Any]:
    """Restore the step's component as the step says; return what the XCom result holds."""
    from drflow.engines.postgres.cluster import free_port
    from drflow.engines.postgres.restore import start_restored
    from drflow.hosts import LocalHost
    from drflow.jobs.restore import NoBackupError, find_copies, restore_intact_copy
    from drflow.store.factory import target_catalogs

    restore, work_dir = step.spec_step(RestoreAction), step.work_dir
    component = restore.component
    facts = plan.component(component)
    catalogs = target_catalogs(plan.spec, choose_targets(restore, facts.targets, component))
    skipped: list[str] = []
    if facts.bin_dir is None:
        raise RestoreRefused(
            f"refused: component '{component}' has no datastore in the spec, so there is no server to restore; "
            "to proceed: declare its datastore"
        )
    bin_dir = Path(facts.bin_dir)
    host = LocalHost()
    started = time.monotonic()
    root = restore_root(work_dir, plan.spec, component, run_key)
    clear_earlier_try(root, host, bin_dir)
    data_dir, socket_dir = root / "data", root / "socket"

    try:
        point: datetime | None = None
        if restore.point_in_time:
            if not params.get("target_time"):
                raise RestoreRefused(
                    "refused: this step restores to a point in time but the run has no target_time; to proceed: "
                    "trigger the plan again with target_time set in the form (ISO 8601, UTC)"
                )
            point = parse_when(str(params["target_time"]), "target_time")
            result = _restore_to_point(
                catalogs,
                component,
                point,
                data_dir,
                socket_dir,
                host=host,
                bin_dir=bin_dir,
                work_dir=work_dir,
                say=skipped.append,
            )
        else:
            before = None
            if restore.before_incident:
                if not params.get("incident_started_at"):
                    raise RestoreRefused(
                        "refused: this step restores the newest backup taken before the incident, but the run has "
                        "no incident_started_at; to proceed: trigger the plan again with incident_started_at set in "
                        "the form"
                    )
                before = parse_when(str(params["incident_started_at"]), "incident_started_at")
            picked = pick_backup(_restorable_in_any(catalogs, component), before=before)
            try:
                restored, copy = restore_intact_copy(
                    find_copies(catalogs, component, picked.backup_id),
                    data_dir,
                    host=host,
                    bin_dir=bin_dir,
                    work_dir=work_dir,
                    say=skipped.append,
                    sync=True,
                )
            except NoBackupError as exc:
                raise RestoreRefused(f"refused: {exc}") from exc
            manifest = copy.manifest
            host.make_private_dir(socket_dir)
            instance = start_restored(data_dir, port=free_port(), socket_dir=socket_dir, bin_dir=bin_dir, host=host)
            result = {
                "backup_id": manifest.backup_id,
                "backup_finished_at": manifest.finished_at.isoformat(),
                "backup_end_lsn": manifest.end_lsn,
                "before_incident": before.isoformat() if before else None,
                "fetch_s": round(restored.fetch_s, 3),
                "lay_out_s": round(restored.lay_out_s, 3),
                "port": instance.port,
                "target": copy.target,
            }
    except BaseException:
        # A refused or failed restore leaves nothing behind: no server, no data, not the run's directory.
        clear_earlier_try(root, host, bin_dir)
        with contextlib.suppress(OSError):
            root.rmdir()
        raise
    port = int(result.pop("port"))
    return {
        "step": restore.name,
        "component": component,
        "skipped_copies": skipped,
        "point_in_time": point.isoformat() if point else None,
        **result,
        "restored": {
            "host": "127.0.0.1",
            # The server listens on this machine's loopback only: later steps must run here (see validate_sql).
            "machine": socket.gethostname(),
            "port": port,
            "user": "postgres",
            "dbname": facts.database,
            "data_directory": str(data_dir),
        },
        "restore_s": round(time.monotonic() - started, 3),
    }


def _restore_to_point(
    catalogs: Sequence[tuple[str, Any]],
    component: str,
    point: datetime,
    data_dir: Path,
    socket_dir: Path,
    *,
    host: Any,
    bin_dir: Path,
    work_dir: str | None,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Point-in-time restore: the full backup before `point` plus the archived WAL, replayed up to it,
    from the first storage target whose copies are intact."""
    from drflow.jobs.pitr import TargetOutOfRangeError, plan_in_targets, restore_to_point_from_any
    from drflow.jobs.restore import NoIntactCopyError

    try:
        plans = plan_in_targets(catalogs, component, target_time=point)
    except TargetOutOfRangeError as exc:
        raise RestoreRefused(
            f"refused: {exc}; to proceed: pick a target_time inside the recoverable range ({PITR_NEEDS_WAL})"
        ) from exc
    try:
        outcome, used = restore_to_point_from_any(
            plans,
            data_dir,
            host=host,
            bin_dir=bin_dir,
            work_dir=work_dir,
            socket_dir=socket_dir,
            say=say,
        )
    except NoIntactCopyError as exc:
        raise RestoreRefused(f"refused: {exc}") from exc
    pitr = used.plan
    return {
        "backup_id": pitr.base.backup_id,
        "backup_finished_at": pitr.base.finished_at.isoformat(),
        "wal_entries": [m.backup_id for m in pitr.wal],
        "replayed_lsn": outcome.replayed_lsn,
        "last_replayed_commit": outcome.last_replayed_commit,
        "fetch_s": round(outcome.fetch_s, 3),
        "lay_out_s": round(outcome.lay_out_s, 3),
        "recovery_s": round(outcome.recovery_s, 3),
        "port": outcome.port,
        "target": used.target,
    }


def run_key(dag_id: str, run_id: str, task_id: str) -> str:
    """Stable across the tries of one task of one run, distinct between runs."""
    return hashlib.sha1(f"{dag_id}/{run_id}/{task_id}".encode()).hexdigest()[:12]


class RestoreStepOperator(PlanStepOperator):
    ui_color = "#fad7a0"
    step_model = RestoreAction

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        ti = context["ti"]
        try:
            result = restore_component(
                step=self.definition,
                plan=self.facts,
                params=context.get("params") or {},
                run_key=run_key(ti.dag_id, ti.run_id, ti.task_id),
            )
        except RestoreRefused as exc:
            raise AirflowFailException(str(exc)) from exc
        restored = result["restored"]
        self.log.info(
            "restored %s of %s from %s; server on %s:%s (data %s) in %.1fs",
            result.get("backup_id"),
            result["component"],
            result["target"],
            restored["host"],
            restored["port"],
            restored["data_directory"],
            result["restore_s"],
        )
        ti.xcom_push(key="restored", value=restored)
        return result
