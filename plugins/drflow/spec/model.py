"""The spec language, version 1: pydantic models of what reviewers write in plan_specs/*.yaml.

Every model forbids unknown keys, so a typo is an error with a did-you-mean rather than a setting
silently ignored. New capabilities extend these models with optional fields or new literal values,
so specs written for version 1 keep validating.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
)

from drflow.retention import RetentionPolicy
from drflow.spec.config import ConfigSettings
from drflow.spec.currency import DEFAULT_REVIEW_EVERY, ReviewDate, ReviewPeriod
from drflow.spec.exercises import Exercise, ExerciseSchedule
from drflow.spec.files import FILES_PRESET, FilesDatastore, S3PrefixDatastore
from drflow.spec.hosts import HOST_DESCRIPTION, HostSpec
from drflow.spec.plans import EscalationLevel, Notification, RecoveryPlan
from drflow.spec.replication import ReplicationMode, ReplicationWatch, replication_mode
from drflow.spec.reports import Reports
from drflow.spec.snapshot import SnapshotDatastore
from drflow.spec.types import (
    NAME_PATTERN,
    Duration,
    PlainPath,
    PositiveDuration,
    Queue,
    Schedule,
    Size,
    queue_field,
)
from drflow.spec.validation import ValidationEntry
from drflow.spec.vault import ClientEncryption, Transition
from drflow.storage_classes import StorageClass

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
ConnId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,250}$")]
# Numbers are accepted and compared as text, the way PostgreSQL prints them (1000, 12.5, true).
Criticality = Literal["critical", "high", "medium", "low"]
Paused = Annotated[bool | None, Field(description="Start paused when Airflow first sees it; unset: inherit.")]
BackupType = Literal["full", "incremental", "differential", "snapshot"]
BackupMethod = Literal["pg_basebackup", "pg_receivewal", "pgbackrest", "pg_dump", "snapshot", "files"]
METHOD_TYPES: dict[str, frozenset[str]] = {
    "pg_basebackup": frozenset({"full"}),
    "pg_receivewal": frozenset({"incremental"}),
    "pgbackrest": frozenset({"full", "differential", "incremental"}),
    "pg_dump": frozenset({"full"}),
    "snapshot": frozenset({"snapshot"}),
    "files": frozenset({"full", "differential", "incremental"}),
}
# The seed's "Database: daily full backup, hourly incremental".
PRESETS: dict[str, list[dict[str, str]]] = {
    "database": [
        {"name": "daily-full", "type": "full", "method": "pg_basebackup", "schedule": "0 2 * * *"},
        {"name": "hourly-wal", "type": "incremental", "method": "pg_receivewal", "schedule": "@hourly"},
    ],
    # "System images: weekly full": an AWS snapshot of the component's `snapshots` source, Sundays 03:00.
    "system-image": [{"name": "weekly-snapshot", "type": "snapshot", "method": "snapshot", "schedule": "0 3 * * 0"}],
    "files": FILES_PRESET,
}


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(SpecModel):
    """Who owns the spec and what it covers."""

    name: Name = Field(description="Spec name; the middle part of every DAG id (dr.<name>.…).")
    owner: str = Field(min_length=1, description="Team that owns the spec; the Airflow owner of its DAGs.")
    description: str = Field("", description="What the spec protects, for people reading the runbook.")
    display_name: str | None = Field(
        None, description="Human name of the service for the Airflow UI (`API Marketplace`); default: `name`."
    )
    reviewed: ReviewDate | None = Field(None, description="Day its owner last reviewed the spec (YYYY-MM-DD).")
    review_every: ReviewPeriod = Field(DEFAULT_REVIEW_EVERY, description="How often it is reviewed (6mo, 1y, 90d).")


class Defaults(SpecModel):
    """Settings every DAG of the spec uses unless a policy or drill says otherwise."""

    retries: int = Field(
        default=2, ge=0, le=20, description="Airflow retries of every task unless a policy says otherwise."
    )
    retry_delay: Duration = Field(default=timedelta(minutes=5), description="Delay between retries.")
    work_dir: str | None = Field(
        default=None,
        description="Scratch directory on the worker for staging and drill instances "
        "(default: $DRFLOW_WORK_DIR or /var/tmp/drflow).",
    )
    audit_conn_id: ConnId | None = Field(
        default=None,
        description="Airflow http connection to Airflow's REST API (a read-only user) that recovery plans' "
        "record and four-eyes check read (default: drflow_airflow_api).",
    )
    notes_conn_id: ConnId | None = Field(
        default=None,
        description="Airflow http connection to Airflow's REST API as a user that may edit DAG runs, through which "
        "drills, reports and plans write their outcome as the run's note (default: drflow_airflow_notes).",
    )
    paused: bool = Field(
        default=False,
        description="Start every DAG of the spec paused when Airflow first sees it (default: protection DAGs "
        "start active; plans and restores have no schedule and run only when triggered).",
    )
    queue: Queue | None = queue_field("every task", "Airflow's [operators] default_queue")
    datastore_queue: Queue | None = queue_field(
        "the tasks that must run near a datastore (streaming backups, pgBackRest, tar, failover steps)", "queue"
    )


class Region(SpecModel):
    """A region (data center) that holds datastores or backups."""

    name: str = Field(min_length=1, description="Region name, e.g. us-east-1.")
    role: Literal["primary", "secondary"] = Field("secondary", description="primary: where the service runs.")
    description: str = ""


class LocalTarget(SpecModel):
    """A backup store in a directory (tests, the sandbox, a mounted volume)."""

    name: Name = Field(description="Name that backup policies and drills use in `targets`/`target`.")
    type: Literal["local"]
    path: str = Field(min_length=1, description="Directory of the store; relative paths are relative to the spec.")
    region: str | None = Field(None, description="Region of the directory, one of `regions`.")
    client_encryption: ClientEncryption | None = Field(
        None, description="Encrypt every backup object on the worker (AES-256-GCM) with a key from Airflow."
    )


class S3Target(SpecModel):
    """A backup store in an S3 bucket (or an S3-compatible service)."""

    name: Name = Field(description="Name that backup policies and drills use in `targets`/`target`.")
    type: Literal["s3"]
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = Field(
        description="S3 bucket name."
    )
    conn_id: ConnId = Field(description="Airflow connection of type aws (an endpoint_url in extra for MinIO/moto).")
    region: str = Field(description="Region of the bucket, one of `regions`.")
    prefix: str = Field("", description="Key prefix of every object drflow writes in the bucket.")
    server_side_encryption: Literal["AES256", "aws:kms"] | None = Field(
        None, description="S3 server-side encryption of every object: AES256 (SSE-S3) or aws:kms (SSE-KMS)."
    )
    kms_key_id: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = Field(
        None,
        description="SSE-KMS key id or ARN (server_side_encryption: aws:kms; default: the bucket's AWS managed key).",
    )
    client_encryption: ClientEncryption | None = Field(
        None, description="Encrypt every backup object on the worker (AES-256-GCM) with a key from Airflow."
    )
    storage_class: StorageClass = Field(
        "STANDARD",
        description="S3 storage class of backup data at upload (manifests stay STANDARD); GLACIER and DEEP_ARCHIVE "
        "need a restore request (hours) before a restore can read them.",
    )
    transition: Transition | None = Field(
        None, description="Bucket lifecycle rule moving backup data to a colder class; see `drflow lifecycle`."
    )

    @field_validator("kms_key_id")
    @classmethod
    def _kms_needs_sse_kms(cls, key_id: str | None, info: ValidationInfo) -> str | None:
        if key_id is not None and info.data.get("server_side_encryption") != "aws:kms":
            raise ValueError("kms_key_id is the key of SSE-KMS: set server_side_encryption: aws:kms, or remove it")
        return key_id


StorageTarget = Annotated[LocalTarget | S3Target, Field(discriminator="type")]


class PrimaryNode(SpecModel):
    """The primary server of a datastore."""

    conn_id: ConnId = Field(description="Airflow connection of type postgres to the primary.")
    region: str = Field(description="Region of the primary, one of `regions`.")
    host: HostSpec = Field("local", description=HOST_DESCRIPTION)
    data_directory: PlainPath | None = Field(None, description="Data directory on the host, for host-side steps.")
    replication_conn_id: ConnId | None = Field(
        None,
        description="Airflow postgres connection to this node as a replication role (LOGIN REPLICATION, not a "
        "superuser): what a standby rebuilt to follow this node streams with (rebuild_replica).",
    )


class ReplicaNode(SpecModel):
    """A streaming replica of the primary; a failover candidate."""

    name: Name = Field(description="Replica name, unique within the datastore.")
    conn_id: ConnId = Field(description="Airflow connection of type postgres to the replica.")
    region: str = Field(description="Region of the replica, one of `regions`.")
    host: HostSpec = Field("local", description=HOST_DESCRIPTION)
    data_directory: PlainPath | None = Field(None, description="Data directory on the host, for host-side steps.")
    slot: str | None = Field(
        None,
        pattern=r"^[a-z0-9_]{1,63}$",
        description="Physical replication slot on the primary that this replica streams from; "
        "the replication watch alerts when it is missing or retains too much WAL.",
    )
    replication_conn_id: ConnId | None = Field(
        None,
        description="Airflow postgres connection to this node as a replication role (LOGIN REPLICATION, not a "
        "superuser): what a standby rebuilt to follow this node (after a failover) streams with.",
    )


class PgBackRestSettings(SpecModel):
    """How pgBackRest (method pgbackrest) reaches the primary on its host; see `drflow pgbackrest-config`."""

    socket_dir: PlainPath = Field(
        default="/var/run/postgresql",
        description="Unix socket directory of the primary on its host (pg1-socket-path): pgBackRest runs "
        "there as the database OS user and connects over the socket; the port comes from the "
        "primary's Airflow connection.",
    )
    config: PlainPath = Field(
        default="/etc/pgbackrest/pgbackrest.conf",
        description="Where the output of `drflow pgbackrest-config` is installed on the database host; "
        "the primary's archive_command names it.",
    )


class PostgresDatastore(SpecModel):
    """A PostgreSQL database of the component, its primary and replicas."""

    type: Literal["postgres"]
    version: int = Field(15, ge=13, le=17, description="PostgreSQL major version (13 to 17).")
    database: str = Field(min_length=1, description="The database that holds this component's data.")
    bin_dir: PlainPath | None = Field(
        None,
        description="Directory of the PostgreSQL programs (pg_ctl, pg_basebackup …) on the worker; default: "
        "/usr/lib/postgresql/<version>/bin if installed, else what pg_config --bindir or the PATH finds, "
        "else the newest /usr/lib/postgresql/<N>/bin for N in 17..13.",
    )
    primary: PrimaryNode
    replicas: list[ReplicaNode] = Field([], description="Streaming replicas, e.g. in the secondary region.")
    replication: ReplicationWatch = Field(
        default_factory=ReplicationWatch, description="Replication-lag watch of the replicas."
    )
    pgbackrest: PgBackRestSettings = Field(
        default_factory=PgBackRestSettings, description="pgBackRest settings, for backup policies of method pgbackrest."
    )
    slot_retention_limit: Size = Field(
        default=10 * 1024**3,
        description="WAL that a replication slot drflow owns for WAL archiving (or one left by a removed policy) "
        "may hold back on the primary before the WAL policy's check_slots task alerts, well before pg_wal fills "
        "the disk; replica slots use replication.max_slot_retained.",
    )


class Retention(SpecModel):
    """How long backups are kept, and how firmly."""

    days: int = Field(ge=1, le=36500, description="Keep each backup at least this many days.")
    policy: RetentionPolicy = Field(
        "standard",
        description="standard: deleted after `days`; governance: every object under S3 Object Lock in governance "
        "mode for `days` (deletion needs the bypass permission); compliance: under compliance-mode Object Lock, "
        "nobody can delete before `days` (S3 targets whose bucket has Object Lock; not local targets).",
    )
    min_copies: int = Field(
        2,
        ge=1,
        le=1000,
        description="Retention never expires a full backup of this policy while fewer than this many valid ones "
        "would remain (the newest valid full is always kept).",
    )


class BackupPolicy(SpecModel):
    """Backups taken on a schedule and written to storage targets."""

    name: Name = Field(description="Policy name, unique within the component; part of the DAG id.")
    type: BackupType = Field(
        description="full: everything; incremental: changes since the previous backup of any type "
        "(WAL for pg_receivewal); differential: changes since the last full; snapshot: an AWS snapshot "
        "(method snapshot) of the component's `snapshots` source."
    )
    method: BackupMethod = Field(
        description="pg_basebackup (full), pg_receivewal (incremental: the WAL since the previous backup), "
        "pgbackrest (full, differential, incremental), pg_dump (full logical dump of the component's database), "
        "snapshot (EBS or RDS snapshots of the component's `snapshots` source, copied to the other regions), "
        "files (a files or s3-prefix datastore: full, differential, incremental)."
    )
    schedule: Schedule
    targets: list[Name] = Field(min_length=1, description="Storage targets that receive every backup.")
    copy_to: list[Name] = Field(
        [],
        description="Storage targets (secondary region, offline) that only the backup DAG's copy task writes, "
        "after verify: each new backup copied from `targets` and its every object checked at the destination.",
    )
    retention: Retention
    compression: Literal["zstd", "gzip", "none"] = Field("zstd", description="Compression of the backup.")
    retries: int | None = Field(None, ge=0, le=20, description="Airflow retries (default: defaults.retries).")
    retry_delay: Duration | None = Field(None, description="Delay between retries (default: defaults.retry_delay).")
    timeout: PositiveDuration | None = Field(None, description="Fail the backup task after this long.")
    queue: Queue | None = queue_field("every task of this policy's DAG", "the component's and defaults' queues")
    slot: str | None = Field(
        None,
        pattern=r"^[a-z0-9_]{1,63}$",
        description="pg_receivewal: the physical replication slot that keeps WAL until it is stored "
        "(default drflow_wal_<6 hex of the spec name>_<component>_<policy>, unique per spec on a shared cluster).",
    )
    paused: Paused = None
    from_node: Name | None = Field(
        None,
        alias="from",
        description="pg_basebackup, pgbackrest: take the backup from this replica (pgBackRest: backup-standby), "
        "so the primary carries no backup load; refused while the replica lags more than the component's RPO.",
    )

    @field_validator("method")
    @classmethod
    def _method_takes_type(cls, method: str, info: ValidationInfo) -> str:
        """Checked on `method` (after `type`), so the error points at the method: line."""
        kind = info.data.get("type")
        allowed = METHOD_TYPES[method]
        if kind is not None and kind not in allowed:
            able = sorted(m for m, types in METHOD_TYPES.items() if kind in types and m != "files")
            raise ValueError(
                f"method '{method}' cannot take {kind} backups (it takes: {', '.join(sorted(allowed))}); "
                f"for {kind} backups use method {' or '.join(able)}, or set type: {' or '.join(sorted(allowed))}"
            )
        return method


class BackupPreset(SpecModel):
    """The seed's schedules in one line: expands into the policies of PRESETS[preset]."""

    preset: Literal["database", "system-image", "files"] = Field(
        description="database: daily full (pg_basebackup at 02:00) plus hourly incremental (WAL via pg_receivewal); "
        "system-image: weekly snapshot (Sundays 03:00) of the component's `snapshots` source; "
        "files (a files or s3-prefix datastore): daily full at 02:00 plus hourly incremental."
    )
    targets: list[Name] = Field(min_length=1, description="Storage targets that receive every backup.")
    retention: Retention
    paused: Paused = None

    def expand(self) -> list[BackupPolicy]:
        shared = {"targets": self.targets, "retention": self.retention, "paused": self.paused}
        return [BackupPolicy(**shared, **fields) for fields in PRESETS[self.preset]]  # type: ignore[arg-type]


def _backup_entry_kind(value: object) -> str:
    return "preset" if isinstance(value, dict) and "preset" in value else "policy"


BackupEntry = Annotated[
    Annotated[BackupPolicy, Tag("policy")] | Annotated[BackupPreset, Tag("preset")],
    Discriminator(_backup_entry_kind),
]


class Drill(SpecModel):
    """A scheduled rehearsal: restore a backup, validate it, record how long it took."""

    name: Name = Field(description="Drill name, unique within the component; part of the DAG id.")
    type: Literal["restore"] = Field(description="restore: restore the newest backup into a scratch instance.")
    schedule: Schedule
    policy: Name | None = Field(None, description="Backup policy whose newest backup is restored (default: any).")
    target: Name | None = Field(None, description="Storage target to restore from (default: the policy's first).")
    validation: list[ValidationEntry] = Field(
        [],
        description="The validation suite the restored copy must pass: SQL checks (`{name, query, expected}`) and "
        "typed checks (`type:` http, integration, checksum, constraints, amcheck, row-count, orphans, http-latency, "
        "pgbench).",
    )
    timeout: PositiveDuration | None = Field(None, description="Fail the drill after this long.")
    paused: Paused = None
    queue: Queue | None = queue_field("every task of this drill's DAG", "the component's and defaults' queues")


class Component(SpecModel):
    """A part of the service with its own recovery objectives, data, backups and drills."""

    name: Name = Field(description="Component name, unique in the spec; part of every DAG id.")
    display_name: str | None = Field(None, description="Human name for the UI and runbooks.")
    description: str = ""
    internal: bool = Field(
        False, description="Customers do not know it: status-page messages never name it (they name the service)."
    )
    owner: str | None = Field(None, description="Team that owns the component (default: metadata.owner).")
    criticality: Criticality = Field(description="Business criticality: critical, high, medium or low.")
    rto: PositiveDuration = Field(description="Recovery time objective.")
    rpo: PositiveDuration = Field(description="Recovery point objective.")
    datastore: Annotated[PostgresDatastore | FilesDatastore | S3PrefixDatastore, Field(discriminator="type")] | None = (
        Field(None, description="Where the component's data lives.")
    )
    snapshots: SnapshotDatastore | None = Field(
        None, description="EBS volumes (a system image) or an RDS instance that backups of method snapshot take."
    )
    backups: list[BackupEntry] = Field([], description="Backup policies (or presets) of the datastore.")
    drills: list[Drill] = Field([], description="Restore drills that prove the backups work.")
    config: ConfigSettings | None = Field(
        None, description="The component's configuration, backed up after each change (every version kept)."
    )
    paused: Paused = None
    allowed_regions: list[str] | None = Field(
        None,
        description="Data sovereignty: the only regions its data, replicas, backups and copies may live in "
        "(default: any region of the spec).",
    )
    queue: Queue | None = queue_field("the component's tasks", "defaults.queue")
    datastore_queue: Queue | None = queue_field(
        "the component's tasks that must run near its datastore", "queue, then defaults.datastore_queue"
    )

    @property
    def backup_policies(self) -> list[BackupPolicy]:
        """The policies with presets expanded, in spec order."""
        policies: list[BackupPolicy] = []
        for entry in self.backups:
            policies.extend(entry.expand() if isinstance(entry, BackupPreset) else [entry])
        return policies

    @property
    def postgres(self) -> PostgresDatastore | None:
        """The datastore when it is a PostgreSQL database (what the database policies, replicas and plans use)."""
        return self.datastore if isinstance(self.datastore, PostgresDatastore) else None

    @property
    def replication_mode(self) -> ReplicationMode | None:
        """What replication the spec requires of its PostgreSQL datastore (None without one)."""
        return replication_mode(self.postgres.replication, self.criticality) if self.postgres else None

    @property
    def title(self) -> str:
        return self.display_name or self.name


class Spec(SpecModel):
    """A drflow disaster-recovery spec: one service's components, their data and how to recover it."""

    version: Literal[1] = Field(description="Spec language version.")
    metadata: Metadata
    defaults: Defaults = Field(default_factory=Defaults, description="Settings shared by every DAG.")
    regions: list[Region] = Field([], description="Regions that datastores and storage targets refer to.")
    storage: list[StorageTarget] = Field([], description="Where backups are written.")
    components: list[Component] = Field(min_length=1, description="The parts of the service to protect.")
    reports: Reports = Field(default_factory=Reports, description="Compliance reports.")
    notifications: list[Notification] = Field([], description="Channels recovery plans notify.")
    recovery_plans: list[RecoveryPlan] = Field([], description="Runbooks ops teams trigger during an incident.")
    escalation: list[EscalationLevel] = Field(
        [], description="Levels told and added as assignees when a plan run's question stays unanswered."
    )
    exercises: list[Exercise] = Field(
        [], description="The exercise program: tabletop, walkthrough, simulation and full-scale tests of the plans."
    )

    def target(self, name: str) -> LocalTarget | S3Target:
        for target in self.storage:
            if target.name == name:
                return target
        raise KeyError(name)

    def recovery_plan(self, name: str) -> RecoveryPlan:
        for plan in self.recovery_plans:
            if plan.name == name:
                return plan
        raise KeyError(name)

    def component(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)

    def exercise_schedules(self) -> tuple[ExerciseSchedule, ...]:
        """The exercise program: each exercise's cron, the components its plan affects, whether it is paused."""
        return tuple(e.scheduled(self.recovery_plan(e.plan).components) for e in self.exercises)
