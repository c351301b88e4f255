"""What the RPO-compliance report is given: per component, the sources of recovery points to measure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from drflow.contracts.base import ContractError, need, optional_str
from drflow.spec.config import ConfigSource

DEFAULT_MAX_SLOT_RETAINED = 1024**3


@dataclass(frozen=True)
class RpoReplica:
    """A streaming replica whose replay lag bounds the data a disaster would lose."""

    name: str
    conn_id: str
    slot: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {"name": self.name, "conn_id": self.conn_id, "slot": self.slot}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RpoReplica:
        what = "RPO report replica"
        return cls(
            name=str(need(params, "name", what)),
            conn_id=str(need(params, "conn_id", what)),
            slot=optional_str(params.get("slot")),
        )


@dataclass(frozen=True)
class RpoComponent:
    """One component of the RPO report: its objective and every place a recovery point of it may be."""

    name: str
    rpo_s: int
    targets: tuple[Mapping[str, Any], ...]
    """Storage targets of its backup policies (copies included), as the spec writes them."""
    primary_conn_id: str | None = None
    """The PostgreSQL primary the replicas' lag is measured against; None without a PostgreSQL datastore."""
    replicas: tuple[RpoReplica, ...] = ()
    max_slot_retained_bytes: int = DEFAULT_MAX_SLOT_RETAINED
    copy_targets: tuple[str, ...] = ()
    """Targets its policies copy to: each must hold a backup no older than the RPO."""
    wal_interval_s: int | None = None
    """The schedule interval of its pg_receivewal policy; None: no WAL archive to count."""
    allowed_regions: tuple[str, ...] | None = None
    config_source: ConfigSource | None = None
    """Its ``config:`` source; None without one."""
    config_targets: tuple[Mapping[str, Any], ...] = ()

    FIELDS: ClassVar[tuple[str, ...]] = (
        "name",
        "rpo_s",
        "targets",
        "primary_conn_id",
        "replicas",
        "max_slot_retained_bytes",
        "copy_targets",
        "wal_interval_s",
        "allowed_regions",
        "config_source",
        "config_targets",
    )

    def __post_init__(self) -> None:
        if self.replicas and self.primary_conn_id is None:
            raise ContractError(
                f"RPO report component {self.name!r}: replicas without a primary_conn_id to measure their lag "
                "against; the plan builder writes the datastore's primary"
            )

    def to_params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rpo_s": self.rpo_s,
            "targets": [dict(t) for t in self.targets],
            "primary_conn_id": self.primary_conn_id,
            "replicas": [r.to_params() for r in self.replicas],
            "max_slot_retained_bytes": self.max_slot_retained_bytes,
            "copy_targets": list(self.copy_targets),
            "wal_interval_s": self.wal_interval_s,
            "allowed_regions": list(self.allowed_regions) if self.allowed_regions is not None else None,
            "config_source": self.config_source.to_params() if self.config_source is not None else None,
            "config_targets": [dict(t) for t in self.config_targets],
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RpoComponent:
        # Every key is required (its value may be empty): a source the builder forgot would otherwise read
        # as "none", and the report would judge the component on less than it has.
        what = "RPO report component"
        values = {key: need(params, key, what) for key in cls.FIELDS}
        wal, allowed, config = values["wal_interval_s"], values["allowed_regions"], values["config_source"]
        return cls(
            name=str(values["name"]),
            rpo_s=int(values["rpo_s"]),
            targets=tuple(dict(t) for t in values["targets"]),
            primary_conn_id=optional_str(values["primary_conn_id"]),
            replicas=tuple(RpoReplica.from_params(r) for r in values["replicas"]),
            max_slot_retained_bytes=int(values["max_slot_retained_bytes"]),
            copy_targets=tuple(str(t) for t in values["copy_targets"]),
            wal_interval_s=int(wal) if wal else None,
            allowed_regions=tuple(str(r) for r in allowed) if allowed is not None else None,
            config_source=ConfigSource.from_params(config) if config is not None else None,
            config_targets=tuple(dict(t) for t in values["config_targets"]),
        )


@dataclass(frozen=True)
class RpoReportRun:
    """The RPO-compliance task of a spec: its components and the target the report is written to."""

    spec_name: str
    components: tuple[RpoComponent, ...]
    target: Mapping[str, Any]
    """The storage target the reports go to, as the spec writes it."""
    notes_conn_id: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "components": [c.to_params() for c in self.components],
            "target": dict(self.target),
            "notes_conn_id": self.notes_conn_id,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RpoReportRun:
        what = "RPO report run"
        return cls(
            spec_name=str(need(params, "spec_name", what)),
            components=tuple(RpoComponent.from_params(c) for c in need(params, "components", what)),
            target=dict(need(params, "target", what)),
            notes_conn_id=optional_str(params.get("notes_conn_id")),
        )
