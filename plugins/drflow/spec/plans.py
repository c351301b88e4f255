"""The recovery-plan part of the spec: notifications, plans, and typed steps.

Only `approved` plans become triggerable DAGs. Every plan run starts with an automated assessment and
a disaster declaration (an approval) that drflow adds itself; the spec lists what follows.
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
    model_validator,
)

from drflow.spec.currency import ReviewDate, ReviewPeriod
from drflow.spec.types import NAME_PATTERN, Duration, ExpectedValue, PositiveDuration, Queue, queue_field
from drflow.spec.validation import DATABASE_TYPES, ValidationEntry

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
ConnId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,250}$")]
NodeRef = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
"""A datastore node: `primary` or the name of one of its replicas."""
UserName = Annotated[str, StringConstraints(min_length=1, max_length=250)]
Scenario = Literal["infrastructure-failure", "data-corruption", "security-incident", "natural-disaster", "human-error"]
NotificationEvent = Literal["activation", "approval-needed", "step-failed", "deadline-missed", "completion"]
ALL_EVENTS: tuple[NotificationEvent, ...] = (
    "activation",
    "approval-needed",
    "step-failed",
    "deadline-missed",
    "completion",
)


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TemplateName = Literal["incident", "update", "resolution", "postmortem"]
STATUSPAGE_EVENTS: tuple[NotificationEvent, ...] = ("activation", "completion")


class StatuspageTemplates(PlanModel):
    """What a status page tells customers; placeholders name public facts only (see README, channels)."""

    incident: str = Field(min_length=1, description="Opens the incident when the plan is activated.")
    update: str | None = Field(
        default=None, description="Status updates (status_every), a failed run, and notify steps with template: update."
    )
    resolution: str = Field(min_length=1, description="Resolves the incident when the run succeeds.")
    postmortem: str | None = Field(default=None, description="The post-incident summary (notify step).")


class Notification(PlanModel):
    """A channel that hears about plan runs. The conn_id holds the address and any secret."""

    name: Name = Field(description="Channel name, used in a plan's `notify`.")
    type: Literal["slack", "smtp", "webhook", "statuspage"] = Field(
        description="slack: incoming webhook (http connection whose host/password is the webhook URL); "
        "smtp: e-mail through an smtp connection; webhook: JSON POST to an http connection; statuspage: "
        "incidents on an Atlassian Statuspage page (http connection: API base URL as host, API key as password)."
    )
    conn_id: ConnId = Field(description="Airflow connection with the address and credentials.")
    to: list[str] = Field(default=[], description="smtp: recipients.")
    events: list[NotificationEvent] = Field(
        default=list(ALL_EVENTS), description="Which events to send (statuspage: activation and completion)."
    )
    page_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,64}$")] | None = Field(
        default=None, description="statuspage: the page's id (required there, refused elsewhere)."
    )
    templates: StatuspageTemplates | None = Field(
        default=None, description="statuspage: the public messages (required there, refused elsewhere)."
    )

    @model_validator(mode="before")
    @classmethod
    def _statuspage_events(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("type") == "statuspage" and "events" not in data:
            return {**data, "events": list(STATUSPAGE_EVENTS)}
        return data

    @model_validator(mode="after")
    def _statuspage_fields(self) -> Notification:
        if self.type != "statuspage":
            extra = [f for f in ("page_id", "templates") if getattr(self, f) is not None]
            if extra:
                raise ValueError(
                    f"channel '{self.name}' ({self.type}) sets {' and '.join(extra)}, which only a statuspage "
                    "channel reads; remove them or set type: statuspage"
                )
            return self
        missing = [f for f in ("page_id", "templates") if getattr(self, f) is None]
        if missing:
            what = {
                "page_id": "page_id: (the page's id in Statuspage)",
                "templates": "templates: (at least incident and resolution)",
            }
            raise ValueError(
                f"statuspage channel '{self.name}' has no {' and no '.join(missing)}; "
                f"add {' and '.join(what[f] for f in missing)}"
            )
        return self

    @field_validator("events")
    @classmethod
    def _public_events(cls, events: list[NotificationEvent], info: ValidationInfo) -> list[NotificationEvent]:
        """At the `events:` line: a status page hears only of activation and completion."""
        internal = [e for e in events if e not in STATUSPAGE_EVENTS]
        if info.data.get("type") == "statuspage" and internal:
            raise ValueError(
                f"a statuspage channel subscribes to {', '.join(internal)}: messages for the operations team; "
                f"list only {' and '.join(STATUSPAGE_EVENTS)} (or leave events out)"
            )
        return events


class Approval(PlanModel):
    """Who may declare the disaster (approve the plan run), and how."""

    approvers: list[UserName] = Field(min_length=1, description="Airflow users who may approve or refuse.")
    four_eyes: bool = Field(default=True, description="The approver must not be the user who triggered the run.")
    timeout: PositiveDuration = Field(default=timedelta(minutes=30), description="Refuse the run when nobody answers.")


class EscalationLevel(PlanModel):
    """Who is told, and added to the people who may answer, when a question of a plan run waits too long."""

    name: Name = Field(description="The level, e.g. incident-commander or executive.")
    people: list[UserName] = Field(min_length=1, description="Airflow users added as assignees at this level.")
    channels: list[Name] = Field(default=[], description="Notification channels told when this level is reached.")
    after: PositiveDuration = Field(
        description="Reached when the declaration, an approval or a manual step is unanswered this long after it "
        "was asked (levels in increasing order)."
    )


class StepBase(PlanModel):
    name: Name = Field(description="Step name, unique in the plan; the task id.")
    description: str = ""
    depends_on: list[Name] = Field(default=[], description="Steps that must finish first (default: the previous).")
    timeout: PositiveDuration | None = Field(default=None, description="Fail the step after this long.")
    verification: bool = Field(default=False, description="The step verifies the recovery (shown in the record).")


class ManualStep(StepBase):
    """A person does something outside Airflow and answers done or failed."""

    type: Literal["manual"]
    assignees: list[UserName] = Field(min_length=1, description="Airflow users who may answer.")
    instructions: str = Field(min_length=1, description="Markdown instructions shown in the task's form.")


class ApprovalStep(StepBase):
    """A go/no-go decision in the middle of a plan."""

    type: Literal["approval"]
    approvers: list[UserName] = Field(min_length=1)
    instructions: str = ""
    four_eyes: bool | None = Field(
        default=None,
        description="The user who triggered the run may not answer, and must be a person logged in to Airflow "
        "(UI or REST API). Default: the plan's approval.four_eyes.",
    )


class AssessAction(StepBase):
    """Check health, lag and the newest backup of a component and report what the plan will do."""

    type: Literal["automated"] = "automated"
    action: Literal["assess"]
    component: Name


class LagGateAction(StepBase):
    """Refuse to go on while a replica is unreachable, not in recovery, or lags more than the RPO."""

    type: Literal["automated"] = "automated"
    action: Literal["gate_lag"]
    component: Name
    node: NodeRef = Field(description="The replica to check: a replica name, or `primary` after a failover.")
    max_lag: Duration | None = Field(default=None, description="Default: the plan's RPO.")
    allow_override: bool = Field(
        default=False,
        description="A run triggered with override_safety may go on when this gate refuses (recorded, with who "
        "set it). Without it the gate always applies.",
    )


class FenceAction(StepBase):
    """Stop the old primary from accepting writes (read-only by default, stop the server with `stop`)."""

    type: Literal["automated"] = "automated"
    action: Literal["fence"]
    component: Name
    node: NodeRef = Field(default="primary", description="The node to fence: `primary` or a replica name.")
    method: Literal["read-only", "stop"] = "read-only"
    allow_override: bool = Field(
        default=False,
        description="A run triggered with override_safety may go on when fencing fails (recorded, with who set "
        "it). Without it a failed fence always stops the plan.",
    )


class PromoteAction(StepBase):
    """Promote a replica; refused if it lags too much, is not in recovery, or the old primary is writable."""

    type: Literal["automated"] = "automated"
    action: Literal["promote"]
    component: Name
    node: NodeRef = Field(description="The standby to promote: a replica name, or `primary` when failing back.")
    fence: NodeRef | None = Field(
        default="primary", description="The node that must not accept writes when the promotion happens."
    )
    allow_override: bool = Field(
        default=False, description="Offer an approved override when a safety check refuses the promotion."
    )


class RebuildReplicaAction(StepBase):
    """Make a node a streaming replica of another (pg_rewind, or a fresh clone when rewind cannot)."""

    type: Literal["automated"] = "automated"
    action: Literal["rebuild_replica"]
    component: Name
    node: NodeRef = Field(description="The node to rebuild, e.g. `primary` after a failover.")
    source: NodeRef = Field(description="The node it will follow, e.g. the promoted replica.")
    wait_caught_up: bool = Field(default=True, description="Wait until it replays up to the source's LSN.")


class SwitchDnsAction(StepBase):
    """Point a DNS record at the recovery side (Route53 through the amazon provider)."""

    type: Literal["automated"] = "automated"
    action: Literal["switch_dns"]
    conn_id: ConnId = Field(description="aws connection.")
    hosted_zone_id: str = Field(min_length=1)
    record_name: str = Field(min_length=1)
    record_type: Literal["A", "AAAA", "CNAME"] = "CNAME"
    value: str = Field(min_length=1, description="The new record value (host name or address).")
    ttl: int = Field(default=60, ge=1, le=86400)


class HttpCallAction(StepBase):
    """Call an HTTP endpoint (a load balancer's API, say) through an http connection."""

    type: Literal["automated"] = "automated"
    action: Literal["http_call"]
    conn_id: ConnId
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    endpoint: str = ""
    json_body: dict[str, object] | None = Field(default=None, alias="json")
    expect_status: list[int] = Field(default=[200, 201, 202, 204])


class RestoreAction(StepBase):
    """Restore a component's backup (or a point in time, with WAL) into a new data directory and start it."""

    type: Literal["automated"] = "automated"
    action: Literal["restore"]
    component: Name
    target: Name | None = Field(default=None, description="Storage target to restore from.")
    point_in_time: bool = Field(default=False, description="Restore to the run's target time (trigger form).")
    before_incident: bool = Field(
        default=False, description="Use the newest backup finished before the incident start in the trigger form."
    )


class ValidateSqlAction(StepBase):
    """Run SQL checks on the promoted, restored or primary database; each must return its expected value."""

    type: Literal["automated"] = "automated"
    action: Literal["validate_sql"]
    component: Name
    node: NodeRef | Literal["restored"] = Field(description="Where to run the checks: a node or `restored`.")
    checks: list[dict[str, ExpectedValue]] = Field(min_length=1, description="{name, query, expected} items.")
    statement_timeout: Duration | None = Field(
        default=None, description="Cancel a check's query after this long (default 60s)."
    )


class ValidateAction(StepBase):
    """Run a validation suite: functional (HTTP, integration points), data and performance checks."""

    type: Literal["automated"] = "automated"
    action: Literal["validate"]
    component: Name
    node: NodeRef | Literal["restored"] | None = Field(
        default=None,
        description="Where the database checks run: a node, or `restored` (the server an earlier restore step "
        "started; checks that compare with the backup need it). Needed when the suite reads the database.",
    )
    suite: list[ValidationEntry] = Field(
        min_length=1, description="The checks, written as a drill's `validation:` entries (`type:` chooses each kind)."
    )

    @model_validator(mode="after")
    def _node_for_database_checks(self) -> ValidateAction:
        if self.node is None and any(check.type in DATABASE_TYPES for check in self.suite):
            raise ValueError(
                f"step '{self.name}' runs database checks but names no node; set node: to a node of "
                f"'{self.component}' or to restored (the server an earlier restore step started)"
            )
        return self


class ValidateHttpAction(StepBase):
    """Check that an HTTP health endpoint answers with the expected status."""

    type: Literal["automated"] = "automated"
    action: Literal["validate_http"]
    conn_id: ConnId
    endpoint: str = "/"
    expect_status: int = 200


class NotifyAction(StepBase):
    """Send a message to notification channels."""

    type: Literal["automated"] = "automated"
    action: Literal["notify"]
    channels: list[Name] = Field(min_length=1)
    message: str | None = Field(default=None, min_length=1, description="The text for chat, e-mail and webhooks.")
    template: TemplateName | None = Field(
        default=None, description="Statuspage channels: which of their templates to send (free text could leak)."
    )

    @model_validator(mode="after")
    def _says_something(self) -> NotifyAction:
        if self.message is None and self.template is None:
            raise ValueError(
                f"step '{self.name}' sends nothing; give message: (chat, e-mail, webhook channels) and/or "
                "template: (statuspage channels: incident, update, resolution or postmortem)"
            )
        return self


class CommandAction(StepBase):
    """Run a reviewed script from include/ (argument list, no shell)."""

    type: Literal["automated"] = "automated"
    action: Literal["run_command"]
    command: list[str] = Field(min_length=1, description="include/ script and its arguments.")


AutomatedStep = Annotated[
    AssessAction
    | LagGateAction
    | FenceAction
    | PromoteAction
    | RebuildReplicaAction
    | SwitchDnsAction
    | HttpCallAction
    | RestoreAction
    | ValidateSqlAction
    | ValidateAction
    | ValidateHttpAction
    | NotifyAction
    | CommandAction,
    Field(discriminator="action"),
]


def _step_kind(value: object) -> str:
    if isinstance(value, dict):
        kind = value.get("type", "automated")
        return kind if kind in ("manual", "approval") else "automated"
    return str(getattr(value, "type", "automated"))


Step = Annotated[
    Annotated[AutomatedStep, Tag("automated")]
    | Annotated[ManualStep, Tag("manual")]
    | Annotated[ApprovalStep, Tag("approval")],
    Discriminator(_step_kind),
]


class RecoveryPlan(PlanModel):
    """A runbook ops teams trigger during an incident: declaration, then the steps, then a record."""

    name: Name = Field(description="Plan name; the DAG id is dr.<spec>.plan.<name>.")
    scenario: Scenario
    status: Literal["draft", "approved", "retired"] = Field(
        description="Only approved plans can be triggered; drafts show why in the UI."
    )
    description: str = ""
    components: list[Name] = Field(min_length=1, description="Affected components.")
    primary_region: str | None = None
    recovery_region: str | None = None
    rto: PositiveDuration | None = Field(default=None, description="Default: the strictest affected component's RTO.")
    rpo: PositiveDuration | None = Field(default=None, description="Default: the strictest affected component's RPO.")
    approval: Approval
    notify: list[Name] = Field(default=[], description="Notification channels.")
    status_every: PositiveDuration | None = Field(
        default=None, description="While a run is active, send a status update to the notify channels this often."
    )
    steps: list[Step] = Field(min_length=1)
    owner: str | None = Field(None, min_length=1, description="Who keeps the plan current (default: the spec's).")
    reviewed: ReviewDate | None = Field(default=None, description="Day of its last review (default: the spec's).")
    review_every: ReviewPeriod | None = Field(default=None, description="Review period (default: the spec's).")
    queue: Queue | None = queue_field(
        "every task of the plan's DAG", "each step's component's queues, then the defaults'"
    )
