"""The base of the operators that run one backup policy of a component into its storage targets."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from drflow.contracts import BackupRun

if TYPE_CHECKING:
    from drflow.engines.postgres.conninfo import PgConnInfo
    from drflow.engines.postgres.standby import StandbySource


class BackupPolicyOperator(BaseOperator):
    """Takes ``run`` (:class:`BackupRun` as its params) from the plan; subclasses add their method's own."""

    def __init__(self, *, run: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = BackupRun.from_params(run)

    def source_conn(self) -> PgConnInfo:
        from drflow.engines.postgres.conninfo import PgConnInfo

        return PgConnInfo.from_airflow_conn(self.run.conn_id, dbname=self.run.database)

    def backup_id(self, context: Any) -> str:
        """Stable across the retries of one DAG run (see operators.common.backup_id_for_run)."""
        from drflow.operators.common import backup_id_for_run

        dag_run = context["dag_run"]
        if self.run.cluster is not None and str(dag_run.run_id).startswith("scheduled__"):
            # The same id in every component's run of this slot: the cluster backup is taken once for them all.
            return backup_id_for_run(self.run.policy, f"cluster:{self.run.cluster.key}", dag_run.run_after)
        return backup_id_for_run(self.run.policy, dag_run.run_id, dag_run.run_after)

    def request_fields(self, context: Any) -> dict[str, Any]:
        """The fields every method's request shares, for this DAG run's backup id."""
        return request_fields(self.run, self.backup_id(context))

    @property
    def binaries(self) -> Path:
        return Path(self.run.bin_dir)

    @property
    def timeout_s(self) -> float | None:
        return self.execution_timeout.total_seconds() if self.execution_timeout else None


def request_fields(run: BackupRun, backup_id: str) -> dict[str, Any]:
    """A policy run as the keyword arguments of ``jobs.request.PolicyBackupRequest`` (every method's request)."""
    return {
        "spec_name": run.spec_name,
        "component": run.component,
        "policy": run.policy,
        "backup_id": backup_id,
        "targets": run.targets,
        "retention_days": run.retention_days,
        "retention_policy": run.retention_policy,
        "compression": run.compression,
        "validation": run.validation,
        "work_dir": run.work_dir,
    }


def standby_source(run: BackupRun) -> StandbySource | None:
    """The replica the policy backs up from (`from:`), from its Airflow connection; None for the primary."""
    from drflow.engines.postgres.conninfo import PgConnInfo
    from drflow.engines.postgres.standby import StandbySource

    standby = run.standby
    if standby is None:
        return None
    conn = PgConnInfo.from_airflow_conn(standby.conn_id, dbname=run.database)
    return StandbySource(standby.name, conn, standby.max_lag_s, standby.data_directory)
