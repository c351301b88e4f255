"""Logical backup operators: check the database can be dumped, then pg_dump it into the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from airflow.sdk import BaseOperator


class PostgresCheckDumpSourceOperator(BaseOperator):
    """Fail early, with a clear reason, when the database cannot be dumped with the spec's pg_dump."""

    ui_color = "#d6eaf8"

    def __init__(self, *, conn_id: str, database: str, pg_major: int, bin_dir: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.database = database
        self.pg_major = pg_major
        self.bin_dir = bin_dir

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.engines.postgres.conninfo import PgConnInfo
        from drflow.engines.postgres.pgdump import check_dump_source

        conn = PgConnInfo.from_airflow_conn(self.conn_id, dbname=self.database)
        return check_dump_source(conn, expected_major=self.pg_major, bin_dir=Path(self.bin_dir))


class PostgresLogicalDumpOperator(BaseOperator):
    """``pg_dump -Fc`` of the component's database into every storage target; idempotent under retries."""

    ui_color = "#aed6f1"

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
        retention_policy: Literal["standard", "compliance", "governance"],
        validation: Sequence[Mapping[str, Any]],
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
        self.validation = [dict(v) for v in validation]
        self.work_dir = work_dir

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.engines.postgres.conninfo import PgConnInfo
        from drflow.jobs.logical import LogicalBackupRequest, take_logical_backup
        from drflow.operators.common import backup_id_for_run, manifest_summary

        dag_run = context["dag_run"]
        manifest = take_logical_backup(
            LogicalBackupRequest(
                spec_name=self.spec_name,
                component=self.component,
                policy=self.policy,
                backup_id=backup_id_for_run(self.policy, dag_run.run_id, dag_run.run_after),
                conn=PgConnInfo.from_airflow_conn(self.conn_id, dbname=self.database),
                bin_dir=Path(self.bin_dir),
                targets=self.targets,
                compression=self.compression,
                retention_days=self.retention_days,
                retention_policy=self.retention_policy,
                validation=self.validation,
                work_dir=self.work_dir,
                timeout=self.execution_timeout.total_seconds() if self.execution_timeout else None,
            )
        )
        self.log.info(
            "backup %s: pg_dump of %s, %d bytes of database stored as %d bytes (%s) in %.1fs",
            manifest.backup_id,
            self.database,
            manifest.database_size_bytes or 0,
            manifest.stored_bytes,
            manifest.compression,
            manifest.duration_s,
        )
        return manifest_summary(manifest)
