"""WAL operators: archive the WAL since the previous entry; check the chain has no gap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator

from drflow.operators.policy import BackupPolicyOperator


class WalArchiveOperator(BackupPolicyOperator):
    """pg_receivewal of every WAL segment since the previous catalog entry; idempotent under retries."""

    ui_color = "#a9cce3"

    def __init__(
        self,
        *,
        pg_major: int,
        slot: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pg_major = pg_major
        self.slot = slot

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.jobs.wal import NoFullBackupError, WalArchiveRequest, archive_wal
        from drflow.operators.common import manifest_summary
        from drflow.store.wal import WalGapError

        request = WalArchiveRequest(
            **self.request_fields(context),
            conn=self.source_conn(),
            bin_dir=self.binaries,
            slot=self.slot,
            timeout_s=self.timeout_s,
        )
        try:
            manifest = archive_wal(request)
        except (WalGapError, NoFullBackupError) as exc:
            # Retrying cannot bring recycled WAL back or make a full backup appear.
            raise AirflowFailException(str(exc)) from exc
        self.log.info(
            "WAL entry %s: %d segments %s..%s (%d bytes stored), recoverable until %s",
            manifest.backup_id,
            len(manifest.extra.get("segments", [])),
            manifest.start_lsn,
            manifest.end_lsn,
            manifest.stored_bytes,
            manifest.extra.get("recoverable_time"),
        )
        return {
            **manifest_summary(manifest),
            "segments": len(manifest.extra.get("segments", [])),
            "recoverable_time": manifest.extra.get("recoverable_time"),
            "recoverable_lsn": manifest.extra.get("recoverable_lsn"),
        }


class CheckWalChainOperator(BaseOperator):
    """Fail, naming the missing LSN range, when the stored WAL has a gap no full backup bridges."""

    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        spec_name: str,
        component: str,
        targets: Sequence[Mapping[str, Any]],
        expected_interval_s: int,
        rpo_s: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.component = component
        self.targets = [dict(t) for t in targets]
        self.expected_interval_s = expected_interval_s
        self.rpo_s = rpo_s

    def execute(self, context: Any) -> dict[str, Any]:
        from datetime import UTC, datetime

        from airflow.sdk.exceptions import AirflowFailException

        from drflow.store.factory import target_catalogs
        from drflow.store.wal import WalGapError, check_wal_chain, recoverable_range, wal_archive_status

        problems: list[str] = []
        result: dict[str, Any] = {}
        for name, catalog in target_catalogs(self.spec_name, self.targets):
            try:
                chain = check_wal_chain(catalog, self.component)
            except WalGapError as exc:
                problems.append(f"{name}: {exc}")
                continue
            for warning in chain["warnings"]:
                self.log.warning("%s: %s", name, warning)
            span = recoverable_range(catalog, self.component)
            status = wal_archive_status(
                catalog, self.component, datetime.now(UTC), self.expected_interval_s, self.rpo_s
            )
            self.log.info(
                "%s: %d WAL entries, recoverable %s; archive lag %ss (RPO %ss)",
                name,
                chain["wal_entries"],
                span.describe() if span else "(nothing yet)",
                status["archive_lag_s"],
                self.rpo_s,
            )
            result[name] = {
                "coverage": chain["coverage"],
                "recoverable": span.describe() if span else None,
                "alerts": [a["code"] for a in status["alerts"]],
            }
        if problems:
            raise AirflowFailException("\n".join(problems))
        return result
