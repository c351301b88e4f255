"""Which operator runs each plan action. One line per action; operators are imported on first use."""

from __future__ import annotations

import importlib
from functools import cache

from airflow.sdk import BaseOperator

ACTIONS: dict[str, str] = {
    "spec.invalid": "drflow.operators.spec_error.InvalidSpecOperator",
    "postgres.check_source": "drflow.operators.backup.PostgresCheckSourceOperator",
    "postgres.full_backup": "drflow.operators.backup.PostgresFullBackupOperator",
    "store.verify_backup": "drflow.operators.store.VerifyBackupOperator",
    "store.copy_backup": "drflow.operators.copy.CopyBackupOperator",
    "store.select_backup": "drflow.operators.store.SelectBackupOperator",
    "postgres.restore_drill": "drflow.operators.drill.RestoreDrillOperator",
    "report.drill": "drflow.operators.drill.DrillReportOperator",
    "files.backup": "drflow.operators.files.FilesBackupOperator",
    "files.restore_drill": "drflow.operators.files.FilesDrillOperator",
    "postgres.wal_archive": "drflow.operators.wal.WalArchiveOperator",
    "store.check_wal_chain": "drflow.operators.wal.CheckWalChainOperator",
    "postgres.check_slots": "drflow.operators.slots.CheckSlotsOperator",
    "store.plan_restore": "drflow.operators.restore.PlanRestoreOperator",
    "postgres.restore": "drflow.operators.restore.RestoreOperator",
    "postgres.verify_restored": "drflow.operators.restore.VerifyRestoredOperator",
    "report.rpo_compliance": "drflow.operators.report.RpoComplianceOperator",
    "report.metrics": "drflow.operators.metrics.MetricsOperator",
    "postgres.replication_lag": "drflow.sensors.replication.ReplicationLagSensor",
    "plan.declare": "drflow.operators.hitl.DeclarationOperator",
    "plan.manual": "drflow.operators.hitl.ManualStepOperator",
    "plan.approval": "drflow.operators.hitl.ApprovalStepOperator",
    "plan.restore": "drflow.operators.restore_step.RestoreStepOperator",
    "plan.draft": "drflow.operators.plan_status.PlanNotApprovedOperator",
    "plan.assess": "drflow.operators.failover.AssessOperator",
    "plan.gate_lag": "drflow.operators.failover.LagGateOperator",
    "plan.fence": "drflow.operators.failover.FenceOperator",
    "plan.promote": "drflow.operators.failover.PromoteOperator",
    "plan.rebuild_replica": "drflow.operators.failover.RebuildReplicaOperator",
    "plan.validate_sql": "drflow.operators.failover.ValidateSqlOperator",
    "plan.validate": "drflow.operators.validation.ValidateSuiteOperator",
    "plan.switch_dns": "drflow.operators.traffic.SwitchDnsOperator",
    "plan.http_call": "drflow.operators.traffic.HttpCallOperator",
    "plan.validate_http": "drflow.operators.traffic.ValidateHttpOperator",
    "plan.notify": "drflow.operators.notify.NotifyOperator",
    "plan.run_command": "drflow.operators.command.RunCommandOperator",
    "plan.record": "drflow.operators.record.RecoveryRecordOperator",
    "plan.status": "drflow.operators.status_watch.StatusWatchOperator",
    "simulation.run": "drflow.operators.simulation.SimulationOperator",
    "simulation.record": "drflow.operators.simulation.ExerciseRecordOperator",
    "pgbackrest.check": "drflow.operators.pgbackrest.PgBackRestCheckOperator",
    "pgbackrest.backup": "drflow.operators.pgbackrest.PgBackRestBackupOperator",
    "pgbackrest.verify": "drflow.operators.pgbackrest.PgBackRestVerifyOperator",
    "postgres.check_dump_source": "drflow.operators.logical.PostgresCheckDumpSourceOperator",
    "postgres.logical_dump": "drflow.operators.logical.PostgresLogicalDumpOperator",
    "store.expire": "drflow.operators.retention.ExpireOperator",
    "snapshot.backup": "drflow.operators.snapshot.SnapshotBackupOperator",
    "snapshot.drill": "drflow.operators.snapshot.SnapshotDrillOperator",
    "config.backup": "drflow.operators.config.ConfigBackupOperator",
    "config.drill": "drflow.operators.config.ConfigDrillOperator",
    "exercise.tabletop_question": "drflow.operators.exercise_tabletop.TabletopQuestionOperator",
    "exercise.tabletop_result": "drflow.operators.exercise_tabletop.TabletopResultOperator",
    "exercise.walkthrough_check": "drflow.operators.exercise_walkthrough.WalkthroughCheckOperator",
    "exercise.walkthrough_report": "drflow.operators.exercise_walkthrough.WalkthroughReportOperator",
    "exercise.fullscale_start": "drflow.operators.exercise_fullscale.FullScaleStartOperator",
    "exercise.fullscale_trigger": "drflow.operators.exercise_fullscale.FullScaleTriggerOperator",
    "exercise.fullscale_result": "drflow.operators.exercise_fullscale.FullScaleResultOperator",
}


@cache
def operator_class(action: str) -> type[BaseOperator]:
    try:
        dotted = ACTIONS[action]
    except KeyError:
        raise KeyError(f"no operator for plan action {action!r}; add it to drflow.render.actions.ACTIONS") from None
    module, _, name = dotted.rpartition(".")
    cls: type[BaseOperator] = getattr(importlib.import_module(module), name)
    return cls
