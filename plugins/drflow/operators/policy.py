"""The base of the operators that run one backup policy of a component into its storage targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from drflow.retention import RetentionPolicy

if TYPE_CHECKING:
    from drflow.engines.postgres.conninfo import PgConnInfo


class BackupPolicyOperator(BaseOperator):
    """Holds what every policy's backup task is given by the plan; subclasses add their method's own."""

    def __init__(
        self,
        *,
        spec_name: str,
        component: str,
        policy: str,
        conn_id: str,
        database: str,
        bin_dir: str,
        targets: Sequence[Mapping[str, Any]],
        compression: str,
        retention_days: int,
        retention_policy: RetentionPolicy,
        work_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.component = component
        self.policy = policy
        self.conn_id = conn_id
        self.database = database
        self.bin_dir = bin_dir
        self.targets = [dict(t) for t in targets]
        self.compression = compression
        self.retention_days = retention_days
        self.retention_policy = retention_policy
        self.work_dir = work_dir

    def source_conn(self) -> PgConnInfo:
        from drflow.engines.postgres.conninfo import PgConnInfo

        return PgConnInfo.from_airflow_conn(self.conn_id, dbname=self.database)

    def backup_id(self, context: Any) -> str:
        """Stable across the retries of one DAG run (see operators.common.backup_id_for_run)."""
        from drflow.operators.common import backup_id_for_run

        dag_run = context["dag_run"]
        return backup_id_for_run(self.policy, dag_run.run_id, dag_run.run_after)

    @property
    def binaries(self) -> Path:
        return Path(self.bin_dir)

    @property
    def timeout_s(self) -> float | None:
        return self.execution_timeout.total_seconds() if self.execution_timeout else None
