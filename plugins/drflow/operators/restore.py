"""Restore DAG operators: check the trigger form and plan, restore (to a point in time), verify."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator


def _catalogs(spec_name: str, targets: Sequence[Mapping[str, Any]], name: str | None) -> Any:
    """The storage targets to restore from, in order: all of them (the first intact copy wins), or the named one."""
    from drflow.store.factory import target_catalogs

    chosen = [t for t in targets if name in (None, t["name"])]
    if not chosen:
        raise ValueError(
            f"storage target {name!r} does not hold this component's backups; use one of "
            f"{', '.join(t['name'] for t in targets)}"
        )
    return target_catalogs(spec_name, chosen)


class PlanRestoreOperator(BaseOperator):
    """Validate the trigger form and find what reaches the target; fails before anything is touched."""

    ui_color = "#fdebd0"

    def __init__(self, *, spec_name: str, component: str, targets: Sequence[Mapping[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.component = component
        self.targets = [dict(t) for t in targets]

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.jobs.pitr import check_restore_dir, plan_from_form

        params = context.get("params") or {}
        try:
            restore_to = check_restore_dir(params.get("restore_to"))
            catalogs = _catalogs(self.spec_name, self.targets, params.get("storage_target"))
            planned = plan_from_form(
                catalogs,
                self.component,
                backup_id=params.get("backup_id") or None,
                target_time=params.get("target_time") or None,
                target_lsn=params.get("target_lsn") or None,
            )
        except (ValueError, LookupError) as exc:
            raise AirflowFailException(
                f"{exc}. Nothing was changed; trigger the DAG again with a corrected form"
            ) from exc
        self.log.info("restore plan: %s", planned)
        return {**planned, "restore_to": str(restore_to), "start": bool(params.get("start"))}


class RestoreOperator(BaseOperator):
    """Carry out the plan: a full backup as it is, or recovery to the target time or LSN."""

    ui_color = "#fad7a0"

    def __init__(
        self,
        *,
        spec_name: str,
        component: str,
        targets: Sequence[Mapping[str, Any]],
        bin_dir: str,
        work_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.component = component
        self.targets = [dict(t) for t in targets]
        self.bin_dir = bin_dir
        self.work_dir = work_dir

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.hosts import LocalHost
        from drflow.jobs.pitr import execute_planned
        from drflow.operators.common import upstream_result

        planned = upstream_result(context, "plan_restore")
        catalogs = _catalogs(self.spec_name, self.targets, (context.get("params") or {}).get("storage_target"))
        result = execute_planned(
            catalogs,
            planned,
            host=LocalHost(),
            bin_dir=Path(self.bin_dir),
            work_dir=self.work_dir,
        )
        self.log.info("restored: %s", result)
        return result


class VerifyRestoredOperator(BaseOperator):
    """Connect to the restored server, check it accepts writes, report where recovery stopped."""

    ui_color = "#d5f5e3"

    def __init__(self, *, database: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.database = database

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from drflow.jobs.pitr import verify_restored
        from drflow.operators.common import upstream_result

        result = upstream_result(context, "restore")
        if not result.get("port"):
            raise AirflowSkipException(
                f"the restored data in {result['data_dir']} was not left running (start=false); "
                f"start it with pg_ctl -D {result['data_dir']} start to use it"
            )
        report = verify_restored(result, self.database)
        if report["problems"]:
            raise AirflowFailException("; ".join(report["problems"]))
        self.log.info("restored server on port %s: %s", result["port"], report)
        return report
