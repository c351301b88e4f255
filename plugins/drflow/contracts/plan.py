"""Plan facts and step definitions: what every plan-step operator of a recovery plan is given."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from drflow.contracts.base import ContractError, need, optional_str
from drflow.spec.hosts import HostSpec, host_from_params, host_params

if TYPE_CHECKING:
    from drflow.spec.plans import StepBase

S = TypeVar("S", bound="StepBase")

DEFAULT_AUDIT_CONN_ID = "drflow_airflow_api"
"""The http connection to Airflow's REST API the record and the four-eyes check read (same as audit.api)."""


@dataclass(frozen=True)
class NodeFacts:
    """One PostgreSQL node of a component (the primary or a replica), as the spec names it."""

    conn_id: str
    region: str | None = None
    host: HostSpec = "local"
    """Where host-side work on the node runs: the worker, or a host over SSH."""
    data_directory: str | None = None
    slot: str | None = None
    replication_conn_id: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id,
            "region": self.region,
            "host": host_params(self.host),
            "data_directory": self.data_directory,
            "slot": self.slot,
            "replication_conn_id": self.replication_conn_id,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> NodeFacts:
        return cls(
            conn_id=str(need(params, "conn_id", "node facts")),
            region=optional_str(params.get("region")),
            host=host_from_params(params.get("host")),
            data_directory=optional_str(params.get("data_directory")),
            slot=optional_str(params.get("slot")),
            replication_conn_id=optional_str(params.get("replication_conn_id")),
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
            rpo_s=int(need(params, "rpo_s", "component facts")),
            rto_s=int(need(params, "rto_s", "component facts")),
            database=optional_str(params.get("database")),
            bin_dir=optional_str(params.get("bin_dir")),
            nodes={str(n): NodeFacts.from_params(v) for n, v in (params.get("nodes") or {}).items()},
            targets=tuple(dict(t) for t in params.get("targets") or ()),
        )


@dataclass(frozen=True)
class ChannelTemplates:
    """A statuspage channel's public messages, as the spec writes them (placeholders unrendered)."""

    incident: str
    resolution: str
    update: str | None = None
    postmortem: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "update": self.update,
            "resolution": self.resolution,
            "postmortem": self.postmortem,
        }

    def named(self, name: str) -> str | None:
        """The template called ``name`` (incident, update, resolution, postmortem), None when not defined."""
        return {"incident": self.incident, "update": self.update, "resolution": self.resolution}.get(
            name, self.postmortem if name == "postmortem" else None
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ChannelTemplates:
        return cls(
            incident=str(need(params, "incident", "statuspage templates")),
            resolution=str(need(params, "resolution", "statuspage templates")),
            update=optional_str(params.get("update")),
            postmortem=optional_str(params.get("postmortem")),
        )


@dataclass(frozen=True)
class ChannelFacts:
    """A notification channel of the spec: an Airflow connection, never a secret."""

    type: str
    conn_id: str
    to: Sequence[str] = ()
    events: Sequence[str] = ()
    page_id: str | None = None
    """statuspage: the page's id."""
    templates: ChannelTemplates | None = None
    """statuspage: its public messages."""

    def to_params(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "conn_id": self.conn_id,
            "to": list(self.to),
            "events": list(self.events),
            "page_id": self.page_id,
            "templates": self.templates.to_params() if self.templates else None,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ChannelFacts:
        templates = params.get("templates")
        return cls(
            type=str(need(params, "type", "notification channel")),
            conn_id=str(need(params, "conn_id", "notification channel")),
            to=tuple(params.get("to") or ()),
            events=tuple(params.get("events") or ()),
            page_id=optional_str(params.get("page_id")),
            templates=ChannelTemplates.from_params(templates) if templates else None,
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
            name=str(need(params, "name", "plan step")),
            type=str(need(params, "type", "plan step")),
            action=optional_str(params.get("action")),
            description=str(params.get("description") or ""),
        )


@dataclass(frozen=True)
class EscalationFacts:
    """One escalation level: reached ``after_s`` seconds after a question was asked and left unanswered."""

    name: str
    people: Sequence[str]
    after_s: int
    channels: Sequence[str] = ()

    def to_params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "people": list(self.people),
            "after_s": self.after_s,
            "channels": list(self.channels),
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EscalationFacts:
        return cls(
            name=str(need(params, "name", "escalation level")),
            people=tuple(need(params, "people", "escalation level")),
            after_s=int(need(params, "after_s", "escalation level")),
            channels=tuple(params.get("channels") or ()),
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
    escalation: Sequence[EscalationFacts] = ()
    """The spec's escalation levels, in the order they are reached."""
    notes_conn_id: str | None = None
    """The http connection the record writes the run's note through (None: drflow_airflow_notes)."""
    service: str = ""
    """The service's public name (metadata.display_name, else its name): what a status page calls it."""
    public_components: Sequence[str] = ()
    """Display names of the affected components customers know (not `internal`); the service's name when none."""
    internal_names: Sequence[str] = ()
    """Names and display names of the spec's internal components: a status-page text naming one is not sent."""

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
            "escalation": [level.to_params() for level in self.escalation],
            "notes_conn_id": self.notes_conn_id,
            "service": self.service,
            "public_components": list(self.public_components),
            "internal_names": list(self.internal_names),
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PlanFacts:
        what = "plan facts"
        return cls(
            spec=str(need(params, "spec", what)),
            plan=str(need(params, "plan", what)),
            scenario=str(need(params, "scenario", what)),
            rto_s=int(need(params, "rto_s", what)),
            rpo_s=int(need(params, "rpo_s", what)),
            components={str(n): ComponentFacts.from_params(v) for n, v in need(params, "components", what).items()},
            primary_region=optional_str(params.get("primary_region")),
            recovery_region=optional_str(params.get("recovery_region")),
            notifications={str(n): ChannelFacts.from_params(v) for n, v in (params.get("notifications") or {}).items()},
            notify=tuple(params.get("notify") or ()),
            steps=tuple(StepSummary.from_params(s) for s in need(params, "steps", what)),
            audit_conn_id=str(need(params, "audit_conn_id", what)),
            escalation=tuple(EscalationFacts.from_params(e) for e in params.get("escalation") or ()),
            notes_conn_id=optional_str(params.get("notes_conn_id")),
            service=str(params.get("service") or params.get("spec")),
            public_components=tuple(str(c) for c in params.get("public_components") or ()),
            internal_names=tuple(str(n) for n in params.get("internal_names") or ()),
        )

    def public_text(self, template: str, started_at: datetime, now: datetime | None = None) -> str:
        """A status-page template rendered with the plan's public facts; a text naming an internal component
        (or a placeholder that is not a public fact) raises ``drflow.public_text.TemplateError``."""
        from drflow.public_text import PublicFacts, render

        facts = PublicFacts(self.service, self.public_components, started_at, self.rto_s, now or started_at)
        return render(template, facts, self.internal_names)

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
    """validate_sql/validate on `restored`: the earlier restore step whose XCom names the server (builder)."""

    BUILDER_KEYS: ClassVar[tuple[str, ...]] = ("work_dir", "restored_by")
    """Keys the builder adds to the spec's step; everything else is the step as the spec wrote it."""

    def to_params(self) -> dict[str, Any]:
        return dict(self.fields)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> StepDefinition:
        four_eyes = params.get("four_eyes")
        return cls(
            name=str(need(params, "name", "plan step")),
            type=str(params.get("type") or "record"),
            fields=dict(params),
            action=optional_str(params.get("action")),
            component=optional_str(params.get("component")),
            description=str(params.get("description") or ""),
            timeout=optional_str(params.get("timeout")),
            approvers=tuple(str(a) for a in params.get("approvers") or ()),
            assignees=tuple(str(a) for a in params.get("assignees") or ()),
            four_eyes=None if four_eyes is None else bool(four_eyes),
            instructions=str(params.get("instructions") or ""),
            assess_tasks=tuple(str(t) for t in params.get("assess_tasks") or ()),
            verification=bool(params.get("verification")),
            work_dir=optional_str(params.get("work_dir")),
            restored_by=optional_str(params.get("restored_by")),
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
