"""The retention operator: `pgbackrest expire` (with pgBackRest policies), then catalog expiry per target."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts import RetentionRun


class ExpireOperator(BaseOperator):
    ui_color = "#fadbd8"

    def __init__(self, *, retention: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retention = RetentionRun.from_params(retention)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.jobs.config_retention import expire_config
        from drflow.jobs.retention import expire_component
        from drflow.store.expiry import PolicyRules

        run = self.retention
        labels, problems = self._pgbackrest_expire()
        rules = {p.name: PolicyRules(days=p.days, min_copies=p.min_copies) for p in run.policies}
        now = datetime.now(UTC)
        result = expire_component(
            run.spec_name,
            run.component,
            run.targets,
            rules,
            now,
            dry_run=False,
            pgbackrest_labels=labels,
            snapshot_conn_id=run.snapshot_conn_id,
        )
        for deletion in result.snapshots:
            for region, ids in deletion.deleted.items():
                self.log.info("%s: deleted snapshots %s in %s", deletion.backup_id, ", ".join(ids), region)
        config = None
        if run.config is not None:
            config = expire_config(
                run.spec_name,
                run.component,
                run.config.targets,
                run.config.days,
                run.config.min_copies,
                now,
                dry_run=False,
            )
            for each in config.targets:
                for version_id in each.deleted:
                    self.log.info("%s: pruned config version %s", each.target, version_id)
                if each.blobs:
                    self.log.info("%s: deleted %d config blobs no kept version names", each.target, len(each.blobs))
            problems += config.problems
        for target in result.targets:
            for row in target.deleted:
                self.log.info("%s: deleted %s: %s", target.target, row["backup_id"], row["reason"])
            for verdict in target.verdicts:
                if not verdict.delete:
                    level = self.log.warning if verdict.locked else self.log.info
                    level(
                        "%s: %s %s: %s",
                        target.target,
                        "skip" if verdict.locked else "keep",
                        verdict.backup_id,
                        verdict.reason,
                    )
        problems += result.problems
        if problems:
            raise AirflowFailException(
                f"retention of {run.component} could not finish everywhere: "
                + "; ".join(problems)
                + ". The other targets were expired on their own; fix these and rerun the task"
            )
        return {**result.to_dict(), "config": config.to_dict() if config is not None else None}

    def _pgbackrest_expire(self) -> tuple[dict[str, set[str]] | None, list[str]]:
        run = self.retention
        if run.pgbackrest is None or run.conn_id is None:
            return None, []
        from drflow.engines.postgres.conninfo import PgConnInfo
        from drflow.engines.postgres.pgbackrest_config import StanzaSettings
        from drflow.hosts.open import open_host
        from drflow.jobs.pgbackrest import StanzaAccess, resolve_s3
        from drflow.jobs.pgbackrest_expire import expire_stanza
        from drflow.spec.hosts import ssh_conn_of

        settings = StanzaSettings.from_params(run.pgbackrest)
        access = StanzaAccess(
            settings, PgConnInfo.from_airflow_conn(run.conn_id, dbname=run.database), resolve_s3(settings)
        )
        host = open_host(*ssh_conn_of(settings.host))
        try:
            expiry = expire_stanza(access, host=host, work_dir=run.work_dir)
        finally:
            host.close()
        return expiry.labels, [f"{name}: {error}" for name, error in expiry.errors.items()]
