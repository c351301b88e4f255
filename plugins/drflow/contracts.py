"""The typed hand-off from plan builders to operators: frozen dataclasses, no Airflow, no operators.

Plan builders build these and put ``to_params()`` (plain JSON) into ``TaskPlan.params``, so
``drflow plan --json`` and the Airflow serializer see only JSON; operators rebuild them with
``from_params()``. A key an operator needs that the builder did not write raises :class:`ContractError`
naming it, instead of reading ``None`` out of a dict at run time.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from drflow.retention import RETENTION_POLICIES, RetentionPolicy

if TYPE_CHECKING:
    from drflow.spec.plans import StepBase

S = TypeVar("S", bound="StepBase")

DEFAULT_AUDIT_CONN_ID = "drflow_airflow_api"
"""The http connection to Airflow's REST API the record and the four-eyes check read (same as audit.api)."""


class ContractError(ValueError):
    """Params that do not hold what the operator needs: a drflow defect between a builder and an operator."""


def _need(params: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return params[key]
    except KeyError:
        raise ContractError(
            f"{what}: the plan gave no {key!r} (it has {', '.join(sorted(params)) or 'nothing'}); "
            "this is a drflow defect: rebuild the DAG with this drflow version, or report it"
        ) from None


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class NodeFacts:
    """One PostgreSQL node of a component (the primary or a replica), as the spec names it."""

    conn_id: str
    region: str | None = None
    host: str = "local"
    data_directory: str | None = None
    slot: str | None = None
    replication_conn_id: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id,
            "region": self.region,
            "host": self.host,
            "data_directory": self.data_directory,
            "slot": self.slot,
            "replication_conn_id": self.replication_conn_id,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> NodeFacts:
        return cls(
            conn_id=str(_need(params, "conn_id", "node facts")),
            region=_optional_str(params.get("region")),
            host=str(params.get("host") or "local"),
            data_directory=_optional_str(params.get("data_directory")),
            slot=_optional_str(params.get("slot")),
            replication_conn_id=_optional_str(params.get("replication_conn_id")),
        )


@dataclass(frozen=True)
class ComponentFacts:
    """What plan steps know about one affected component: objectives, nodes, database, storage targets."""

    rpo_s: int
    rto_s: int
    database: str | None = None
    bin_dir: str | None = None
    nodes: Mapping[str, NodeFacts] = field(default_factory=dict)
    targets: Sequence[Mapping[str, Any]] = ()
    """Storage targets as the spec writes them (``model_dump(mode="json")``): the store layer reads them."""

    def to_params(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "bin_dir": self.bin_dir,
            "rpo_s": self.rpo_s,
            "rto_s": self.rto_s,
            "nodes": {name: node.to_params() for name, node in self.nodes.items()},
            "targets": [dict(t) for t in self.targets],
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ComponentFacts:
        return cls(
            rpo_s=int(_need(params, "rpo_s", "component facts")),
            rto_s=int(_need(params, "rto_s", "component facts")),
            database=_optional_str(params.get("database")),
            bin_dir=_optional_str(params.get("bin_dir")),
            nodes={str(n): NodeFacts.from_params(v) for n, v in (params.get("nodes") or {}).items()},
            targets=tuple(dict(t) for t in params.get("targets") or ()),
        )


@dataclass(frozen=True)
class ChannelFacts:
    """A notification channel of the spec: an Airflow connection, never a secret."""

    type: str
    conn_id: str
    to: Sequence[str] = ()
    events: Sequence[str] = ()

    def to_params(self) -> dict[str, Any]:
        return {"type": self.type, "conn_id": self.conn_id, "to": list(self.to), "events": list(self.events)}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ChannelFacts:
        return cls(
            type=str(_need(params, "type", "notification channel")),
            conn_id=str(_need(params, "conn_id", "notification channel")),
            to=tuple(params.get("to") or ()),
            events=tuple(params.get("events") or ()),
        )


@dataclass(frozen=True)
class StepSummary:
    """One step of a recovery plan as the assessment and the declaration list it."""

    name: str
    type: str
    action: str | None = None
    description: str = ""

    def to_params(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "action": self.action, "description": self.description}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> StepSummary:
        return cls(
            name=str(_need(params, "name", "plan step")),
            type=str(_need(params, "type", "plan step")),
            action=_optional_str(params.get("action")),
            description=str(params.get("description") or ""),
        )


@dataclass(frozen=True)
class PlanFacts:
    """What every step operator of a recovery plan knows about the plan (see plan.recovery.plan_facts)."""

    spec: str
    plan: str
    scenario: str
    rto_s: int
    rpo_s: int
    components: Mapping[str, ComponentFacts]
    primary_region: str | None = None
    recovery_region: str | None = None
    notifications: Mapping[str, ChannelFacts] = field(default_factory=dict)
    notify: Sequence[str] = ()
    steps: Sequence[StepSummary] = ()
    """The plan's own steps in order (what the assessment and the declaration list)."""
    audit_conn_id: str = DEFAULT_AUDIT_CONN_ID
    """The http connection to Airflow's REST API that the record and the four-eyes check read."""

    def to_params(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "plan": self.plan,
            "scenario": self.scenario,
            "rto_s": self.rto_s,
            "rpo_s": self.rpo_s,
            "primary_region": self.primary_region,
            "recovery_region": self.recovery_region,
            "components": {name: facts.to_params() for name, facts in self.components.items()},
            "notifications": {name: channel.to_params() for name, channel in self.notifications.items()},
            "notify": list(self.notify),
            "steps": [step.to_params() for step in self.steps],
            "audit_conn_id": self.audit_conn_id,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PlanFacts:
        what = "plan facts"
        return cls(
            spec=str(_need(params, "spec", what)),
            plan=str(_need(params, "plan", what)),
            scenario=str(_need(params, "scenario", what)),
            rto_s=int(_need(params, "rto_s", what)),
            rpo_s=int(_need(params, "rpo_s", what)),
            components={str(n): ComponentFacts.from_params(v) for n, v in _need(params, "components", what).items()},
            primary_region=_optional_str(params.get("primary_region")),
            recovery_region=_optional_str(params.get("recovery_region")),
            notifications={str(n): ChannelFacts.from_params(v) for n, v in (params.get("notifications") or {}).items()},
            notify=tuple(params.get("notify") or ()),
            steps=tuple(StepSummary.from_params(s) for s in _need(params, "steps", what)),
            audit_conn_id=str(_need(params, "audit_conn_id", what)),
        )

    def component(self, name: str) -> ComponentFacts:
        """The facts of an affected component; a name the plan does not affect says which ones it does."""
        try:
            return self.components[name]
        except KeyError:
            known = ", ".join(sorted(self.components)) or "none"
            raise ValueError(
                f"component {name!r} is not affected by plan {self.plan!r} (affected: {known}); "
                "add it to the plan's components in the spec"
            ) from None


@dataclass(frozen=True)
class StepDefinition:
    """A recovery-plan step as the spec writes it: the fields every step has, typed, and the step's own.

    ``fields`` is the whole step as JSON (``model_dump(mode="json", by_alias=True)`` plus what the builder
    adds, e.g. ``work_dir`` or ``restored_by``); the action-specific keys were validated by the spec's
    models (``drflow.spec.plans``) before a builder ever saw them.
    """

    name: str
    type: str
    fields: Mapping[str, Any]
    action: str | None = None
    component: str | None = None
    description: str = ""
    timeout: str | None = None
    """A duration as the spec writes it (``10m``)."""
    approvers: Sequence[str] = ()
    """Approval steps and the declaration: who may answer."""
    assignees: Sequence[str] = ()
    """Manual steps: who does the work."""
    four_eyes: bool | None = None
    """Approval steps and the declaration: the builder fills in the plan's default."""
    instructions: str = ""
    assess_tasks: Sequence[str] = ()
    """The declaration: the assessment tasks whose results the approvers see."""
    verification: bool = False
    """Its end marks the recovery (the record measures the recovery time up to it)."""
    work_dir: str | None = None
    """Restore steps: the spec's scratch directory (defaults.work_dir), added by the builder."""
    restored_by: str | None = None
    """validate_sql on `restored`: the earlier restore step whose XCom names the server, added by the builder."""

    BUILDER_KEYS: ClassVar[tuple[str, ...]] = ("work_dir", "restored_by")
    """Keys the builder adds to the spec's step; everything else is the step as the spec wrote it."""

    def to_params(self) -> dict[str, Any]:
        return dict(self.fields)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> StepDefinition:
        four_eyes = params.get("four_eyes")
        return cls(
            name=str(_need(params, "name", "plan step")),
            type=str(params.get("type") or "record"),
            fields=dict(params),
            action=_optional_str(params.get("action")),
            component=_optional_str(params.get("component")),
            description=str(params.get("description") or ""),
            timeout=_optional_str(params.get("timeout")),
            approvers=tuple(str(a) for a in params.get("approvers") or ()),
            assignees=tuple(str(a) for a in params.get("assignees") or ()),
            four_eyes=None if four_eyes is None else bool(four_eyes),
            instructions=str(params.get("instructions") or ""),
            assess_tasks=tuple(str(t) for t in params.get("assess_tasks") or ()),
            verification=bool(params.get("verification")),
            work_dir=_optional_str(params.get("work_dir")),
            restored_by=_optional_str(params.get("restored_by")),
        )

    def spec_step(self, kind: builtins.type[S]) -> S:
        """The step as the spec's own typed model (``drflow.spec.plans``): every action field, typed."""
        from pydantic import ValidationError

        data = {key: value for key, value in self.fields.items() if key not in self.BUILDER_KEYS}
        try:
            return kind.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '-'}: {e['msg']}" for e in exc.errors())
            raise ContractError(
                f"plan step {self.name!r} is not a valid {kind.__name__}: {problems}; this is a drflow defect: "
                "rebuild the DAG with this drflow version, or report it"
            ) from None


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
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BackupRun:
        what = "backup policy run"
        values = {key: _need(params, key, what) for key in cls.FIELDS}
        policy = str(values["retention_policy"])
        if policy not in RETENTION_POLICIES:
            raise ContractError(f"{what}: retention_policy {policy!r} is not one of {', '.join(RETENTION_POLICIES)}")
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
            retention_policy=cast(RetentionPolicy, policy),
            validation=tuple(dict(v) for v in params.get("validation") or ()),
            work_dir=_optional_str(params.get("work_dir")),
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
        values = {key: _need(params, key, what) for key in cls.FIELDS}
        policy, level = str(values["retention_policy"]), str(values["level"])
        if policy not in RETENTION_POLICIES:
            raise ContractError(f"{what}: retention_policy {policy!r} is not one of {', '.join(RETENTION_POLICIES)}")
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
            retention_policy=cast(RetentionPolicy, policy),
            work_dir=_optional_str(params.get("work_dir")),
        )
