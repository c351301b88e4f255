"""What drill tasks are given: the scratch restore of a database, file, snapshot or config drill, and the report.

Every drill operator takes its contract as ``drill=``; the drill's name, its component's objectives and the
connection its run note goes through are :class:`DrillFacts`, the same in every kind of drill (its keys sit
beside the contract's own in the params, so ``drflow plan`` shows a changed RPO as ``drill.rpo_s``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drflow.contracts.base import need, optional_str
from drflow.contracts.config import ConfigRun
from drflow.contracts.runs import SnapshotRun


@dataclass(frozen=True)
class DrillFacts:
    """A drill as its report names and judges it: its name, the component's RTO and RPO, and the Airflow
    connection the run's note is written through (None: the default one)."""

    name: str
    rto_s: int
    rpo_s: int
    notes_conn_id: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {"name": self.name, "rto_s": self.rto_s, "rpo_s": self.rpo_s, "notes_conn_id": self.notes_conn_id}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DrillFacts:
        what = "drill"
        return cls(
            name=str(need(params, "name", what)),
            rto_s=int(need(params, "rto_s", what)),
            rpo_s=int(need(params, "rpo_s", what)),
            notes_conn_id=optional_str(params.get("notes_conn_id")),
        )


@dataclass(frozen=True)
class RestoreDrillRun:
    """The scratch restore of a database drill: the backup's copies (the drill's target first), the database
    and its binaries, and the validation queries whose results are compared with those at backup time."""

    spec_name: str
    component: str
    target: Mapping[str, Any]
    """The storage target the drill restores from, as the spec writes it."""
    fallback_targets: tuple[Mapping[str, Any], ...]
    """The same backup's other targets, used when the drill target's copy is corrupt or unreachable."""
    database: str
    bin_dir: str
    validation: tuple[Mapping[str, Any], ...]
    """The drill's validation queries as the spec writes them."""
    work_dir: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "component": self.component,
            "target": dict(self.target),
            "fallback_targets": [dict(t) for t in self.fallback_targets],
            "database": self.database,
            "bin_dir": self.bin_dir,
            "validation": [dict(v) for v in self.validation],
            "work_dir": self.work_dir,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RestoreDrillRun:
        what = "restore drill"
        return cls(
            spec_name=str(need(params, "spec_name", what)),
            component=str(need(params, "component", what)),
            target=dict(need(params, "target", what)),
            fallback_targets=tuple(dict(t) for t in need(params, "fallback_targets", what)),
            database=str(need(params, "database", what)),
            bin_dir=str(need(params, "bin_dir", what)),
            validation=tuple(dict(v) for v in need(params, "validation", what)),
            work_dir=optional_str(params.get("work_dir")),
        )


@dataclass(frozen=True)
class FilesDrillRun:
    """The scratch restore of a files or s3-prefix drill: the targets whose chain is replayed (first first)."""

    spec_name: str
    component: str
    targets: tuple[Mapping[str, Any], ...]
    work_dir: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "component": self.component,
            "targets": [dict(t) for t in self.targets],
            "work_dir": self.work_dir,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> FilesDrillRun:
        what = "files drill"
        return cls(
            spec_name=str(need(params, "spec_name", what)),
            component=str(need(params, "component", what)),
            targets=tuple(dict(t) for t in need(params, "targets", what)),
            work_dir=optional_str(params.get("work_dir")),
        )


@dataclass(frozen=True)
class DrillReportRun:
    """The report of a database or files drill: the verdict on the restore's result, written to ``target``."""

    spec_name: str
    component: str
    target: Mapping[str, Any]
    facts: DrillFacts

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "component": self.component,
            "target": dict(self.target),
            **self.facts.to_params(),
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DrillReportRun:
        what = "drill report"
        return cls(
            spec_name=str(need(params, "spec_name", what)),
            component=str(need(params, "component", what)),
            target=dict(need(params, "target", what)),
            facts=DrillFacts.from_params(params),
        )


@dataclass(frozen=True)
class SnapshotDrillRun:
    """A snapshot drill: the policy's snapshots, the region the volume or instance is created in, the drill."""

    snapshot: SnapshotRun
    region: str
    """The first region the snapshots are copied to, else the source's own."""
    facts: DrillFacts

    def to_params(self) -> dict[str, Any]:
        return {"snapshot": self.snapshot.to_params(), "region": self.region, **self.facts.to_params()}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SnapshotDrillRun:
        what = "snapshot drill"
        return cls(
            snapshot=SnapshotRun.from_params(need(params, "snapshot", what)),
            region=str(need(params, "region", what)),
            facts=DrillFacts.from_params(params),
        )


@dataclass(frozen=True)
class ConfigDrillRun:
    """A config drill: the config's versions, the reviewed command run on the restored copy, the drill."""

    config: ConfigRun
    facts: DrillFacts
    validate_command: str | None
    """A reviewed script (``include/commands/``) given the restored directory; None: the hash check only."""
    command_timeout_s: float
    work_dir: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "config": self.config.to_params(),
            **self.facts.to_params(),
            "validate_command": self.validate_command,
            "command_timeout_s": self.command_timeout_s,
            "work_dir": self.work_dir,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ConfigDrillRun:
        what = "config drill"
        return cls(
            config=ConfigRun.from_params(need(params, "config", what)),
            facts=DrillFacts.from_params(params),
            validate_command=optional_str(need(params, "validate_command", what)),
            command_timeout_s=float(need(params, "command_timeout_s", what)),
            work_dir=optional_str(params.get("work_dir")),
        )
