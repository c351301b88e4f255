"""The typed hand-off from plan builders to operators: frozen dataclasses, no Airflow, no operators.

Plan builders build these and put ``to_params()`` (plain JSON) into ``TaskPlan.params``, so
``drflow plan --json`` and the Airflow serializer see only JSON; operators rebuild them with
``from_params()``. A key an operator needs that the builder did not write raises :class:`ContractError`
naming it, instead of reading ``None`` out of a dict at run time.
"""

from drflow.contracts.base import ContractError
from drflow.contracts.config import ConfigRetentionRun, ConfigRun
from drflow.contracts.drills import (
    ConfigDrillRun,
    DrillFacts,
    DrillReportRun,
    FilesDrillRun,
    RestoreDrillRun,
    SnapshotDrillRun,
)
from drflow.contracts.exercise import ExerciseFacts, TabletopQuestion, WalkthroughCheck
from drflow.contracts.plan import (
    DEFAULT_AUDIT_CONN_ID,
    ChannelFacts,
    ChannelTemplates,
    ComponentFacts,
    EscalationFacts,
    NodeFacts,
    PlanFacts,
    StepDefinition,
    StepSummary,
)
from drflow.contracts.rpo import RpoComponent, RpoReplica, RpoReportRun
from drflow.contracts.runs import (
    BackupRun,
    CopyRun,
    FilesBackupRun,
    PolicyRetention,
    RetentionRun,
    SnapshotRun,
    StandbyFacts,
)
from drflow.contracts.simulation import SimulationRun

__all__ = [
    "DEFAULT_AUDIT_CONN_ID",
    "BackupRun",
    "ChannelFacts",
    "ChannelTemplates",
    "ComponentFacts",
    "ConfigDrillRun",
    "ConfigRetentionRun",
    "ConfigRun",
    "ContractError",
    "CopyRun",
    "DrillFacts",
    "DrillReportRun",
    "EscalationFacts",
    "ExerciseFacts",
    "FilesBackupRun",
    "FilesDrillRun",
    "NodeFacts",
    "PlanFacts",
    "PolicyRetention",
    "RestoreDrillRun",
    "RetentionRun",
    "RpoComponent",
    "RpoReplica",
    "RpoReportRun",
    "SimulationRun",
    "SnapshotDrillRun",
    "SnapshotRun",
    "StandbyFacts",
    "StepDefinition",
    "StepSummary",
    "TabletopQuestion",
    "WalkthroughCheck",
]
