"""pgBackRest operators: check the stanza, back up into every target's repository, verify."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator

from drflow.contracts import BackupRun

if TYPE_CHECKING:
    from drflow.hosts import Host
    from drflow.jobs.pgbackrest import StanzaAccess


class _StanzaOperator(BaseOperator):
    """Runs pgBackRest on the primary's host (``local``: the worker) as the database OS user."""

    def __init__(
        self,
        *,
        spec_name: str,
        component: str,
        conn_id: str,
        database: str,
        pgbackrest: Mapping[str, Any],
        work_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.component = component
        self.conn_id = conn_id
        self.database = database
        self.pgbackrest = dict(pgbackrest)
        self.work_dir = work_dir

    def stanza_access(self) -> StanzaAccess:
        from drflow.engines.postgres.conninfo import PgConnInfo
        from drflow.engines.postgres.pgbackrest_config import StanzaSettings
        from drflow.jobs.pgbackrest import StanzaAccess, resolve_s3

        settings = StanzaSettings.from_params(self.pgbackrest)
        conn = PgConnInfo.from_airflow_conn(self.conn_id, dbname=self.database)
        return StanzaAccess(settings, conn, resolve_s3(settings))

    def stanza_host(self) -> contextlib.closing[Host]:
        """The primary's host, where pgBackRest runs (closed after use)."""
        from drflow.engines.postgres.pgbackrest_config import StanzaSettings
        from drflow.hosts.open import open_host
        from drflow.spec.hosts import ssh_conn_of

        return contextlib.closing(open_host(*ssh_conn_of(StanzaSettings.from_params(self.pgbackrest).host)))


class PgBackRestCheckOperator(_StanzaOperator):
    """stanza-create (where missing) and ``pgbackrest check``: fail early when archiving does not work."""

    ui_color = "#d6eaf8"

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.jobs.pgbackrest import check_stanza

        with self.stanza_host() as host:
            return check_stanza(self.stanza_access(), host=host, work_dir=self.work_dir)


class PgBackRestBackupOperator(_StanzaOperator):
    """``pgbackrest backup`` of one type into the repository of every target; idempotent under retries."""

    ui_color = "#aed6f1"

    def __init__(
        self,
        *,
        run: Mapping[str, Any],
        pgbackrest: Mapping[str, Any],
        backup_type: Literal["full", "differential", "incremental"],
        **kwargs: Any,
    ) -> None:
        policy_run = BackupRun.from_params(run)
        super().__init__(
            spec_name=policy_run.spec_name,
            component=policy_run.component,
            conn_id=policy_run.conn_id,
            database=policy_run.database,
            pgbackrest=pgbackrest,
            work_dir=policy_run.work_dir,
            **kwargs,
        )
        self.run = policy_run
        self.backup_type = backup_type

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.jobs.pgbackrest import PgBackRestBackupRequest, take_pgbackrest_backup
        from drflow.operators.common import backup_id_for_run, manifest_summary
        from drflow.operators.policy import request_fields, standby_source

        dag_run = context["dag_run"]
        run = self.run
        request = PgBackRestBackupRequest(
            **request_fields(run, backup_id_for_run(run.policy, dag_run.run_id, dag_run.run_after)),
            backup_type=self.backup_type,
            access=dataclasses.replace(self.stanza_access(), standby=standby_source(run)),
        )
        with self.stanza_host() as host:
            manifests = take_pgbackrest_backup(request, host=host)
        for manifest in manifests:
            self.log.info(
                "backup %s: pgBackRest %s backup %s in repo%s, %d bytes stored, LSN %s..%s",
                manifest.backup_id,
                manifest.backup_type,
                manifest.extra["label"],
                manifest.extra["repo"],
                manifest.stored_bytes,
                manifest.start_lsn,
                manifest.end_lsn,
            )
        summary = manifest_summary(manifests[0])
        summary["labels"] = {t["name"]: m.extra["label"] for t, m in zip(run.targets, manifests, strict=True)}
        summary["types"] = {t["name"]: m.backup_type for t, m in zip(run.targets, manifests, strict=True)}
        return summary


class PgBackRestVerifyOperator(_StanzaOperator):
    """``pgbackrest verify`` of the repositories the new backup went to, and its catalog record."""

    ui_color = "#d5f5e3"

    def __init__(self, *, targets: Sequence[Mapping[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.targets = [dict(t) for t in targets]

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.engines.postgres.pgbackrest_config import PgBackRestError
        from drflow.jobs.pgbackrest import verify_pgbackrest_backup
        from drflow.operators.common import upstream_result

        backup_id = upstream_result(context, "pgbackrest_backup")["backup_id"]
        try:
            with self.stanza_host() as host:
                return verify_pgbackrest_backup(
                    self.stanza_access(),
                    self.spec_name,
                    self.component,
                    backup_id,
                    self.targets,
                    host=host,
                    work_dir=self.work_dir,
                )
        except PgBackRestError as exc:
            # A damaged backup stays damaged: retrying the verification cannot help.
            raise AirflowFailException(str(exc)) from exc
