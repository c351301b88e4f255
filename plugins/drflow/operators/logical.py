"""Logical backup operators: check the database can be dumped, then pg_dump it into the store."""

from __future__ import annotations

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

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.jobs.logical import LogicalBackupRequest, take_logical_backup
        from drflow.operators.common import manifest_summary

        manifest = take_logical_backup(
            LogicalBackupRequest(
                **self.request_fields(context), conn=self.source_conn(), bin_dir=self.binaries, timeout=self.timeout_s
            )
        )
        self.log.info(
            "backup %s: pg_dump of %s, %d bytes of database stored as %d bytes (%s) in %.1fs",
            manifest.backup_id,
            self.run.database,
            manifest.database_size_bytes or 0,
            manifest.stored_bytes,
            manifest.compression,
            manifest.duration_s,
        )
        return manifest_summary(manifest)
