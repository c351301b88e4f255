"""Policy runs: what backup, snapshot and retention tasks are given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

from drflow.contracts.base import ContractError, need, optional_str, retention_policy
from drflow.contracts.config import ConfigRetentionRun
from drflow.retention import RetentionPolicy
from drflow.spec.clusters import ClusterShare


@dataclass(frozen=True)
class StandbyFacts:
    """The replica a backup policy takes its backups from (`from:`), and the lag it may have."""

    name: str
    conn_id: str
    max_lag_s: int
    """The component's RPO: a replica further behind is refused as the source."""
    data_directory: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "conn_id": self.conn_id,
            "max_lag_s": self.max_lag_s,
            "data_directory": self.data_directory,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> StandbyFacts:
        what = "standby source"
        return cls(
            name=str(need(params, "name", what)),
            conn_id=str(need(params, "conn_id", what)),
            max_lag_s=int(need(params, "max_lag_s", what)),
            data_directory=optional_str(params.get("data_directory")),
        )


@dataclass(frozen=True)
class BackupRun:
    """One backup policy of a component run into its storage targets: what every backup method shares.

    The backup tasks of every method (pg_basebackup, pg_dump, pg_receivewal, pgBackRest) get it as
    ``run=``; each method adds only its own keyword arguments beside it.
    """

    spec_name: str
    component: str
    policy: str
    conn_id: str
    """The primary's Airflow connection."""
    database: str
    bin_dir: str
    """The PostgreSQL binaries of the datastore."""
    targets: Sequence[Mapping[str, Any]]
    """Storage targets as the spec writes them (``model_dump(mode="json")``)."""
    compression: str
    retention_days: int
    retention_policy: RetentionPolicy
    validation: Sequence[Mapping[str, Any]] = ()
    """Validation queries of the component's drills, recorded at backup time (not for WAL)."""
    work_dir: str | None = None
    standby: StandbyFacts | None = None
    """The replica the backup is taken from (`from:`); None: the primary."""
    cluster: ClusterShare | None = None
    """The components on the same cluster that share this policy's backups (pg_basebackup); None: not shared."""

    FIELDS: ClassVar[tuple[str, ...]] = (
        "spec_name",
        "component",
        "policy",
        "conn_id",
        "database",
        "bin_dir",
        "targets",
        "compression",
        "retention_days",
        "retention_policy",
    )

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "component": self.component,
            "policy": self.policy,
            "conn_id": self.conn_id,
            "database": self.database,
            "bin_dir": self.bin_dir,
            "targets": [dict(t) for t in self.targets],
            "compression": self.compression,
            "retention_days": self.retention_days,
            "retention_policy": self.retention_policy,
            "validation": [dict(v) for v in self.validation],
            "work_dir": self.work_dir,
            "standby": self.standby.to_params() if self.standby is not None else None,
            "cluster": self.cluster.to_params() if self.cluster is not None else None,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BackupRun:
        what = "backup policy run"
        values = {key: need(params, key, what) for key in cls.FIELDS}
        return cls(
            spec_name=str(values["spec_name"]),
            component=str(values["component"]),
            policy=str(values["policy"]),
            conn_id=str(values["conn_id"]),
            database=str(values["database"]),
            bin_dir=str(values["bin_dir"]),
            targets=tuple(dict(t) for t in values["targets"]),
            compression=str(values["compression"]),
            retention_days=int(values["retention_days"]),
            retention_policy=retention_policy(values, what),
            validation=tuple(dict(v) for v in params.get("validation") or ()),
            work_dir=optional_str(params.get("work_dir")),
            standby=StandbyFacts.from_params(params["standby"]) if params.get("standby") else None,
            cluster=ClusterShare.from_params(params["cluster"]) if params.get("cluster") else None,
        )


@dataclass(frozen=True)
class PolicyRetention:
    """One backup policy's retention as the spec writes it: what expiry applies to its entries."""

    name: str
    days: int
    min_copies: int


@dataclass(frozen=True)
class RetentionRun:
    """One component's expiry in the retention DAG: its targets (each expired on its own), its policies'
    retention, and, when it has pgBackRest policies, the stanza whose ``pgbackrest expire`` runs first."""

    spec_name: str
    component: str
    targets: Sequence[Mapping[str, Any]]
    """Storage targets as the spec writes them (``model_dump(mode="json")``)."""
    policies: tuple[PolicyRetention, ...]
    pgbackrest: Mapping[str, Any] | None = None
    """``StanzaSettings.to_params()`` of the component's stanza; None without pgBackRest policies."""
    conn_id: str | None = None
    """The primary's Airflow connection (pgBackRest only)."""
    database: str | None = None
    work_dir: str | None = None
    snapshot_conn_id: str | None = None
    """The AWS connection of the component's snapshot source: deletes expired entries' snapshots."""
    config: ConfigRetentionRun | None = None
    """The component's config versions' retention; None without a ``config`` section."""

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "component": self.component,
            "targets": [dict(t) for t in self.targets],
            "policies": [{"name": p.name, "days": p.days, "min_copies": p.min_copies} for p in self.policies],
            "pgbackrest": dict(self.pgbackrest) if self.pgbackrest is not None else None,
            "conn_id": self.conn_id,
            "database": self.database,
            "work_dir": self.work_dir,
            "snapshot_conn_id": self.snapshot_conn_id,
            "config": self.config.to_params() if self.config is not None else None,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RetentionRun:
        what = "retention run"
        policies = []
        for policy in need(params, "policies", what):
            values = {key: need(policy, key, f"{what} policy") for key in ("name", "days", "min_copies")}
            policies.append(PolicyRetention(str(values["name"]), int(values["days"]), int(values["min_copies"])))
        stanza = params.get("pgbackrest")
        config = params.get("config")
        return cls(
            spec_name=str(need(params, "spec_name", what)),
            component=str(need(params, "component", what)),
            targets=tuple(dict(t) for t in need(params, "targets", what)),
            policies=tuple(policies),
            pgbackrest=dict(stanza) if stanza is not None else None,
            conn_id=optional_str(params.get("conn_id")),
            database=optional_str(params.get("database")),
            work_dir=optional_str(params.get("work_dir")),
            snapshot_conn_id=optional_str(params.get("snapshot_conn_id")),
            config=ConfigRetentionRun.from_params(config) if config is not None else None,
        )


@dataclass(frozen=True)
class SnapshotRun:
    """A snapshot policy of a component: the source, its copy regions, and the targets that record it.

    The snapshot backup task gets it as ``snapshot=``, and the snapshot drill task too.
    """

    spec_name: str
    component: str
    policy: str
    targets: Sequence[Mapping[str, Any]]
    """Storage targets as the spec writes them (``model_dump(mode="json")``): where the record goes."""
    retention_days: int
    retention_policy: RetentionPolicy
    kind: Literal["ebs", "rds"]
    conn_id: str
    """The aws connection."""
    region: str
    copy_to: tuple[str, ...] = ()
    volume_id: str | None = None
    volume_tags: Mapping[str, str] = field(default_factory=dict)
    db_instance: str | None = None
    instance_class: str = "db.t3.micro"
    zone: str | None = None
    """Availability zone of what a drill creates (default: the drill region + 'a' for volumes)."""
    poll_s: float = 15.0
    timeout_s: float = 6 * 3600.0
    work_dir: str | None = None

    FIELDS: ClassVar[tuple[str, ...]] = (
        "spec_name",
        "component",
        "policy",
        "targets",
        "retention_days",
        "retention_policy",
        "kind",
        "conn_id",
        "region",
        "copy_to",
        "poll_s",
        "timeout_s",
    )

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "component": self.component,
            "policy": self.policy,
            "targets": [dict(t) for t in self.targets],
            "retention_days": self.retention_days,
            "retention_policy": self.retention_policy,
            "kind": self.kind,
            "conn_id": self.conn_id,
            "region": self.region,
            "copy_to": list(self.copy_to),
            "volume_id": self.volume_id,
            "volume_tags": dict(self.volume_tags),
            "db_instance": self.db_instance,
            "instance_class": self.instance_class,
            "zone": self.zone,
            "poll_s": self.poll_s,
            "timeout_s": self.timeout_s,
            "work_dir": self.work_dir,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SnapshotRun:
        what = "snapshot policy run"
        values = {key: need(params, key, what) for key in cls.FIELDS}
        kind = str(values["kind"])
        if kind not in ("ebs", "rds"):
            raise ContractError(f"{what}: kind {kind!r} is not ebs or rds")
        return cls(
            spec_name=str(values["spec_name"]),
            component=str(values["component"]),
            policy=str(values["policy"]),
            targets=tuple(dict(t) for t in values["targets"]),
            retention_days=int(values["retention_days"]),
            retention_policy=retention_policy(values, what),
            kind=cast(Literal["ebs", "rds"], kind),
            conn_id=str(values["conn_id"]),
            region=str(values["region"]),
            copy_to=tuple(str(r) for r in values["copy_to"]),
            volume_id=optional_str(params.get("volume_id")),
            volume_tags={str(k): str(v) for k, v in (params.get("volume_tags") or {}).items()},
            db_instance=optional_str(params.get("db_instance")),
            instance_class=str(params.get("instance_class") or "db.t3.micro"),
            zone=optional_str(params.get("zone")),
            poll_s=float(values["poll_s"]),
            timeout_s=float(values["timeout_s"]),
            work_dir=optional_str(params.get("work_dir")),
        )


@dataclass(frozen=True)
class FilesBackupRun:
    """One backup policy of a files or s3-prefix component: the datastore as the spec names it, the level."""

    spec_name: str
    component: str
    policy: str
    level: str
    """full, incremental (since the previous backup of any level) or differential (since the last full)."""
    datastore: Mapping[str, Any]
    """The component's datastore as the spec writes it (``model_dump(mode="json")``): type files or s3-prefix."""
    targets: Sequence[Mapping[str, Any]]
    retention_days: int
    retention_policy: RetentionPolicy
    work_dir: str | None = None

    FIELDS: ClassVar[tuple[str, ...]] = (
        "spec_name",
        "component",
        "policy",
        "level",
        "datastore",
        "targets",
        "retention_days",
        "retention_policy",
    )

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "component": self.component,
            "policy": self.policy,
            "level": self.level,
            "datastore": dict(self.datastore),
            "targets": [dict(t) for t in self.targets],
            "retention_days": self.retention_days,
            "retention_policy": self.retention_policy,
            "work_dir": self.work_dir,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> FilesBackupRun:
        what = "files backup run"
        values = {key: need(params, key, what) for key in cls.FIELDS}
        level = str(values["level"])
        if level not in ("full", "incremental", "differential"):
            raise ContractError(f"{what}: level {level!r} is not full, incremental or differential")
        if dict(values["datastore"]).get("type") not in ("files", "s3-prefix"):
            raise ContractError(f"{what}: datastore {values['datastore']!r} is not of type files or s3-prefix")
        return cls(
            spec_name=str(values["spec_name"]),
            component=str(values["component"]),
            policy=str(values["policy"]),
            level=level,
            datastore=dict(values["datastore"]),
            targets=tuple(dict(t) for t in values["targets"]),
            retention_days=int(values["retention_days"]),
            retention_policy=retention_policy(values, what),
            work_dir=optional_str(params.get("work_dir")),
        )


@dataclass(frozen=True)
class CopyRun:
    """A policy's copy task: fill its copy targets (``copy_to``) with the verified backups of its targets.

    Each copy is locked as the policy's retention says, as the backup itself was.
    """

    spec_name: str
    component: str
    policy: str
    sources: tuple[Mapping[str, Any], ...]
    """The policy's targets, as the spec writes them: where the copies come from (first that has it)."""
    destinations: tuple[Mapping[str, Any], ...]
    """The policy's ``copy_to`` targets, as the spec writes them."""
    retention_days: int
    retention_policy: RetentionPolicy
    work_dir: str | None = None

    FIELDS: ClassVar[tuple[str, ...]] = (
        "spec_name",
        "component",
        "policy",
        "sources",
        "destinations",
        "retention_days",
        "retention_policy",
    )

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "component": self.component,
            "policy": self.policy,
            "sources": [dict(t) for t in self.sources],
            "destinations": [dict(t) for t in self.destinations],
            "retention_days": self.retention_days,
            "retention_policy": self.retention_policy,
            "work_dir": self.work_dir,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> CopyRun:
        what = "copy run"
        values = {key: need(params, key, what) for key in cls.FIELDS}
        return cls(
            spec_name=str(values["spec_name"]),
            component=str(values["component"]),
            policy=str(values["policy"]),
            sources=tuple(dict(t) for t in values["sources"]),
            destinations=tuple(dict(t) for t in values["destinations"]),
            retention_days=int(values["retention_days"]),
            retention_policy=retention_policy(values, what),
            work_dir=optional_str(params.get("work_dir")),
        )
