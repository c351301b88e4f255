"""Logical backup operators: check the database can be dumped, then pg_dump it into the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from drflow.operators.policy import BackupPolicyOperator


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


class PostgresLogicalDumpOperator(BackupPolicyOperator):
    """``pg_dump -Fc`` of the component's database into every storage target; idempotent under retries."""

    ui_color = "#aed6f1"

    def __init__(
        self,
        *,
        validation: Sequence[Mapping[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.validation = [dict(v) for v in validation]

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.jobs.logical import LogicalBackupRequest, take_logical_backup
        from drflow.operators.common import manifest_summary

        manifest = take_logical_backup(
            LogicalBackupRequest(
                spec_name=self.spec_name,
                component=self.component,
                policy=self.policy,
                backup_id=self.backup_id(context),
                conn=self.source_conn(),
                bin_dir=self.binaries,
                targets=self.targets,
                compression=self.compression,
                retention_days=self.retention_days,
                retention_policy=self.retention_policy,
                validation=self.validation,
                work_dir=self.work_dir,
                timeout=self.timeout_s,
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
