"""Backup operators: check the source, then take a full PostgreSQL backup into the store."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from drflow.operators.policy import BackupPolicyOperator, standby_source


class PostgresCheckSourceOperator(BaseOperator):
    """Fail early, with a clear reason, when the primary cannot give a base backup."""

    ui_color = "#d6eaf8"

    def __init__(self, *, conn_id: str, database: str, pg_major: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.database = database
        self.pg_major = pg_major

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.engines.postgres.conninfo import PgConnInfo
        from drflow.engines.postgres.health import check_backup_source

        conn = PgConnInfo.from_airflow_conn(self.conn_id, dbname=self.database)
        return check_backup_source(conn, expected_major=self.pg_major)


class PostgresFullBackupOperator(BackupPolicyOperator):
    """pg_basebackup of the primary into every storage target; idempotent under retries."""

    ui_color = "#aed6f1"

    def __init__(self, *, pg_major: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pg_major = pg_major

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.jobs.backup import FullBackupRequest, take_full_backup
        from drflow.operators.common import manifest_summary

        request = FullBackupRequest(
            **self.request_fields(context),
            conn=self.source_conn(),
            bin_dir=self.binaries,
            timeout_s=self.timeout_s,
            standby=standby_source(self.run),
            cluster=self.run.cluster,
        )
        manifest = take_full_backup(request)
        self.log.info(
            "backup %s: %d bytes of data stored as %d bytes in %.1fs, LSN %s..%s",
            manifest.backup_id,
            manifest.database_size_bytes or 0,
            manifest.stored_bytes,
            manifest.duration_s,
            manifest.start_lsn,
            manifest.end_lsn,
        )
        return manifest_summary(manifest)
