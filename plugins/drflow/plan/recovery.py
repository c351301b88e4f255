"""Recovery-plan DAGs (kind `recovery-plan`): assess → declare (approval) → the spec's steps → record.

Only `approved` plans become triggerable DAGs; a draft or retired plan becomes a paused placeholder
whose only task fails and says why. Operators get two JSON dicts: the step as written in the spec
(`model_dump(mode="json", by_alias=True)`, read back as `contracts.StepDefinition`) and the plan facts of
:func:`plan_facts` (`contracts.PlanFacts.to_params()`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from drflow.contracts import (
    DEFAULT_AUDIT_CONN_ID,
    ChannelFacts,
    ChannelTemplates,
    ComponentFacts,
    EscalationFacts,
    NodeFacts,
    PlanFacts,
    StepSummary,
)
from drflow.engines.postgres.bindir import datastore_bin_dir
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.plan.presentation import plan_title
from drflow.plan.runbook import runbook_markdown
from drflow.public_text import public_components
from drflow.spec.model import Component, PrimaryNode, ReplicaNode, Spec
from drflow.spec.plans import ApprovalStep, Notification, RecoveryPlan, RestoreAction, Step
from drflow.spec.types import format_duration

KIND_RECOVERY_PLAN = "recovery-plan"
CRITICALITY_ORDER = ("critical", "high", "medium", "low")
ASSESS, DECLARE, RECORD, DRAFT, STATUS = "assess", "declare", "record", "not_approved", "status_updates"
RESERVED_STEP_NAMES = frozenset({ASSESS, DECLARE, RECORD, STATUS})
STEP_FAILED = {"failure": "step-failed"}


def plan_dag_id(spec: Spec, plan: RecoveryPlan) -> str:
    return f"dr.{spec.metadata.name}.plan.{plan.name}"


def assess_task_ids(plan: RecoveryPlan) -> list[str]:
    """`assess` for a one-component plan; `assess-<component>` for each component otherwise."""
    if len(plan.components) == 1:
        return [ASSESS]
    return [f"{ASSESS}-{name}" for name in plan.components]


def plan_objectives(spec: Spec, plan: RecoveryPlan) -> tuple[int, int]:
    """RTO and RPO in seconds: the plan's own, else the strictest affected component's."""
    components = [spec.component(name) for name in plan.components]
    rto = plan.rto or min(c.rto for c in components)
    rpo = plan.rpo or min(c.rpo for c in components)
    return int(rto.total_seconds()), int(rpo.total_seconds())


def plan_facts(spec: Spec, plan: RecoveryPlan) -> PlanFacts:
    """What every step operator needs to know about the plan: JSON only, never a secret."""
    rto_s, rpo_s = plan_objectives(spec, plan)
    service = spec.metadata.display_name or spec.metadata.name
    affected = [spec.component(name) for name in plan.components]
    return PlanFacts(
        spec=spec.metadata.name,
        plan=plan.name,
        scenario=plan.scenario,
        rto_s=rto_s,
        rpo_s=rpo_s,
        primary_region=plan.primary_region,
        recovery_region=plan.recovery_region,
        components={name: _component_facts(spec, spec.component(name)) for name in plan.components},
        notifications={channel.name: _channel_facts(channel) for channel in spec.notifications},
        notify=tuple(plan.notify),
        steps=tuple(_step_summary(step) for step in plan.steps),
        audit_conn_id=spec.defaults.audit_conn_id or DEFAULT_AUDIT_CONN_ID,
        escalation=tuple(
            EscalationFacts(
                name=level.name,
                people=tuple(level.people),
                after_s=int(level.after.total_seconds()),
                channels=tuple(level.channels),
            )
            for level in spec.escalation
        ),
        notes_conn_id=spec.defaults.notes_conn_id,
        service=service,
        public_components=tuple(public_components([(c.title, c.internal) for c in affected], service)),
        internal_names=tuple(name for c in spec.components if c.internal for name in dict.fromkeys((c.name, c.title))),
    )


def _channel_facts(channel: Notification) -> ChannelFacts:
    templates = channel.templates
    return ChannelFacts(
        type=channel.type,
        conn_id=channel.conn_id,
        to=tuple(channel.to),
        events=tuple(channel.events),
        page_id=channel.page_id,
        templates=ChannelTemplates(
            incident=templates.incident,
            resolution=templates.resolution,
            update=templates.update,
            postmortem=templates.postmortem,
        )
        if templates
        else None,
    )


def _component_facts(spec: Spec, component: Component) -> ComponentFacts:
    rpo_s, rto_s = int(component.rpo.total_seconds()), int(component.rto.total_seconds())
    # The targets of its backups (where restore steps look, and the recovery record is kept); a component
    # without a database (files, configuration) keeps its record beside its config versions too.
    names = [name for policy in component.backup_policies for name in policy.targets]
    datastore = component.postgres
    if datastore is None:
        names += component.config.targets if component.config else []
    targets = tuple(spec.target(name).model_dump(mode="json") for name in dict.fromkeys(names))
    if datastore is None:
        return ComponentFacts(rpo_s=rpo_s, rto_s=rto_s, targets=targets)
    nodes = {"primary": _node_facts(datastore.primary, slot=None)}
    for replica in datastore.replicas:
        nodes[replica.name] = _node_facts(replica, slot=replica.slot)
    return ComponentFacts(
        rpo_s=rpo_s,
        rto_s=rto_s,
        database=datastore.database,
        bin_dir=str(datastore_bin_dir(datastore.bin_dir, datastore.version)),
        nodes=nodes,
        targets=targets,
    )


def _node_facts(node: PrimaryNode | ReplicaNode, *, slot: str | None) -> NodeFacts:
    return NodeFacts(
        conn_id=node.conn_id,
        region=node.region,
        host=node.host,
        data_directory=node.data_directory,
        slot=slot,
        replication_conn_id=node.replication_conn_id,
    )


def recovery_plan(spec: Spec, plan: RecoveryPlan, source: str, graph: DagPlan | None = None) -> DagPlan:
    """The DAG of one plan: triggerable when approved, a failing paused placeholder otherwise.

    ``graph``: the plan's :func:`plan_graph`, when the caller has built it already (it is not built again).
    """
    graph = graph if graph is not None else plan_graph(spec, plan, source)
    if plan.status != "approved":
        return _not_approved_plan(spec, plan, source, graph)
    return graph


def plan_graph(spec: Spec, plan: RecoveryPlan, source: str) -> DagPlan:
    """The plan's task graph as Airflow runs it once approved, its docs the runbook written from it."""
    facts = plan_facts(spec, plan).to_params()
    rto_s, _ = plan_objectives(spec, plan)
    tasks = [*_assess_tasks(plan, facts), _declare_task(spec, plan, facts)]
    steps = _step_tasks(spec, plan, facts)
    tasks += [*steps, _record_task(steps, facts)]
    if plan.status_every is not None:
        tasks.append(_status_task(plan, facts))
    names = ", ".join(spec.component(name).title for name in plan.components)
    dag = DagPlan(
        dag_id=plan_dag_id(spec, plan),
        kind=KIND_RECOVERY_PLAN,
        schedule=None,
        description=f"{plan.scenario} recovery of {names}: {plan.description or plan.name}"[:200],
        doc_md="",
        tasks=tuple(tasks),
        params=trigger_form(spec, plan),
        deadline_s=rto_s,
        display_name=f"{plan_title(plan.name)} (plan)",
        notify=facts,
        extra_tags=plan_tags(plan),
        **plan_dag_fields(spec, plan, source),
    )
    # The DAG's docs are its runbook, written from the task graph just built (plan/runbook.py).
    return replace(dag, doc_md=runbook_markdown(dag))


def plan_dag_fields(spec: Spec, plan: RecoveryPlan, source: str) -> dict[str, Any]:
    components = [spec.component(name) for name in plan.components]
    return {
        "spec": spec.metadata.name,
        "source": source,
        "component": plan.components[0] if len(plan.components) == 1 else None,
        "criticality": min((c.criticality for c in components), key=CRITICALITY_ORDER.index),
        "owner": spec.metadata.owner,
        "retries": spec.defaults.retries,
        "retry_delay_s": int(spec.defaults.retry_delay.total_seconds()),
        "max_active_runs": 1,
    }


def plan_tags(plan: RecoveryPlan) -> tuple[str, ...]:
    return (
        f"scenario:{plan.scenario}",
        *(f"component:{name}" for name in plan.components),
        f"status:{plan.status}",
    )


def trigger_form(spec: Spec, plan: RecoveryPlan) -> dict[str, dict[str, Any]]:
    """The trigger form: a required reason; every other field optional (null), with a title and a description.

    Airflow's form treats a field as required unless its type admits null, so optional fields are
    `["null", …]`; a dropdown labels null through `values_display` instead of showing `null`.
    """
    regions = [region.name for region in spec.regions]
    default_region = plan.recovery_region or "the plan's recovery region"
    region: dict[str, Any] = {
        "default": None,
        "type": ["null", "string"],
        "title": "Target region",
        "description": f"Region to recover into; empty means the plan's recovery region ({default_region}).",
    }
    if regions:
        region["enum"] = [None, *regions]
        region["values_display"] = {"null": f"Plan default ({default_region})"}
    return {
        "reason": {
            "type": "string",
            "minLength": 1,
            "title": "Reason",
            "description": "Why this plan is run: the incident, its ticket, what was observed. Required.",
        },
        "notes": {
            "default": None,
            "type": ["null", "string"],
            "title": "Notes",
            "format": "multiline",
            "description": "Optional: anything the approvers and the recovery record should know.",
        },
        "target_region": region,
        "target_time": {
            "default": None,
            "type": ["null", "string"],
            "format": "date-time",
            "title": "Target time",
            "description": "Optional, point-in-time restores only: recover the data as it was at this moment.",
        },
        "incident_started_at": {
            "default": None,
            "type": ["null", "string"],
            "format": "date-time",
            "title": "Incident started at",
            "description": "Optional: when the incident began; restores with before_incident use the newest "
            "backup finished before it, and the record measures data lost up to it.",
        },
        "override_safety": {
            "default": False,
            "type": "boolean",
            "title": "Override safety checks",
            "description": "Promote even when a safety check refuses: only with an approved override.",
        },
    }


def _assess_tasks(plan: RecoveryPlan, facts: dict[str, Any]) -> list[TaskPlan]:
    tasks = []
    for index, (task_id, component) in enumerate(zip(assess_task_ids(plan), plan.components, strict=True)):
        step: dict[str, Any] = {
            "name": task_id,
            "type": "automated",
            "action": "assess",
            "component": component,
            "description": f"Health, replication lag and newest backup of {component}, and what the plan will do.",
            "depends_on": [],
            "timeout": None,
            "verification": False,
        }  # the plan's steps, which the assessment lists, are in the plan facts (PlanFacts.steps)
        tasks.append(
            TaskPlan(
                task_id=task_id,
                action="plan.assess",
                doc=f"Assess `{component}`: reachability and role of every node, replication lag against the RPO, "
                "the newest backup, and what the plan will do. Changes nothing.",
                params={"step": step, "plan": facts},
                notify_on={"execute": "activation", **STEP_FAILED} if index == 0 else dict(STEP_FAILED),
            )
        )
    return tasks


def _declare_task(spec: Spec, plan: RecoveryPlan, facts: dict[str, Any]) -> TaskPlan:
    approval = plan.approval
    step = {
        "name": DECLARE,
        "type": "approval",
        "approvers": list(approval.approvers),
        "four_eyes": approval.four_eyes,
        "timeout": format_duration(approval.timeout),
        "assess_tasks": assess_task_ids(plan),
    }
    who = ", ".join(approval.approvers)
    return TaskPlan(
        task_id=DECLARE,
        action="plan.declare",
        doc=f"Disaster declaration: {who} approve or refuse, with the assessment in front of them"
        + (" (not the person who triggered the run)" if approval.four_eyes else "")
        + f". A refusal (or no answer within {format_duration(approval.timeout)}) fails this step: no step runs, "
        "nothing changes, and the run ends failed with a note saying who refused and why.",
        params={"step": step, "plan": facts},
        upstream=tuple(assess_task_ids(plan)),
        notify_on=dict(STEP_FAILED),
    )


def _step_summary(step: Step) -> StepSummary:
    return StepSummary(
        name=step.name, type=step.type, action=getattr(step, "action", None), description=step.description
    )


def _step_tasks(spec: Spec, plan: RecoveryPlan, facts: dict[str, Any]) -> list[TaskPlan]:
    tasks = []
    previous = DECLARE
    for index, step in enumerate(plan.steps):
        data = step_fields(spec, plan, index)
        human = step.type in ("manual", "approval")
        tasks.append(
            TaskPlan(
                task_id=step.name,
                action=f"plan.{step.type}" if human else f"plan.{data['action']}",
                doc=_step_doc(step),
                params={"step": data, "plan": facts},
                upstream=tuple(step.depends_on) or (previous,),
                # People answer within the step's timeout (their operators read it); automated steps are cut off.
                timeout_s=None if human or step.timeout is None else int(step.timeout.total_seconds()),
                notify_on=dict(STEP_FAILED),
            )
        )
        previous = step.name
    return tasks


def step_fields(spec: Spec, plan: RecoveryPlan, index: int) -> dict[str, Any]:
    """The plan's step ``index`` as its operator gets it: the spec's step plus what the builder adds."""
    step = plan.steps[index]
    data = step.model_dump(mode="json", by_alias=True)
    if isinstance(step, RestoreAction):
        data["work_dir"] = spec.defaults.work_dir
    if isinstance(step, ApprovalStep) and step.four_eyes is None:
        data["four_eyes"] = plan.approval.four_eyes
    if data.get("action") in ("validate_sql", "validate") and data.get("node") == "restored":
        data["restored_by"] = _restoring_step(plan, index, data["component"])
    return data


def _restoring_step(plan: RecoveryPlan, index: int, component: str) -> str | None:
    """The nearest earlier restore step of `component` (whose XCom names the restored server)."""
    for step in reversed(plan.steps[:index]):
        if isinstance(step, RestoreAction) and step.component == component:
            return step.name
    return None


def _record_task(steps: list[TaskPlan], facts: dict[str, Any]) -> TaskPlan:
    followed = {upstream for task in steps for upstream in task.upstream}
    leaves = [task.task_id for task in steps if task.task_id not in followed]
    return TaskPlan(
        task_id=RECORD,
        action="plan.record",
        doc="The recovery record: who triggered and approved, every step's timings and outcome, the recovery "
        "time against the RTO; written to the store and XCom. Runs whatever happened before it.",
        params={"step": {"name": RECORD}, "plan": facts},
        upstream=tuple(leaves),
        retries=0,
        trigger_rule="all_done",
        teardown=True,
    )


def _status_task(plan: RecoveryPlan, facts: dict[str, Any]) -> TaskPlan:
    assert plan.status_every is not None
    return TaskPlan(
        task_id=STATUS,
        action="plan.status",
        doc=f"Status updates to {', '.join(plan.notify)} every {format_duration(plan.status_every)} while the run "
        "is active: steps done, current step and whom it waits on, elapsed time against the RTO, expected "
        "completion from earlier runs. Ends with the run's steps; never fails the run.",
        params={"every_s": int(plan.status_every.total_seconds()), "plan": facts},
        # A lost watcher would fail the run: it starts again (its own errors are caught, Airflow's are not).
        retries=3,
        retry_delay_s=5,
    )


def _step_doc(step: Step) -> str:
    parts = [step.description] if step.description else []
    instructions = getattr(step, "instructions", "")
    if instructions:
        parts.append(instructions)
    if step.type == "manual":
        parts.append(f"Assigned to {', '.join(step.assignees)}: answer Done or Failed.")
    elif step.type == "approval":
        parts.append(f"Approvers: {', '.join(step.approvers)}.")
    return "\n\n".join(parts) or f"`{getattr(step, 'action', step.type)}` step."


def _not_approved_plan(spec: Spec, plan: RecoveryPlan, source: str, graph: DagPlan) -> DagPlan:
    status = plan.status
    why = (
        f"plan '{plan.name}' is {status} and cannot be run; a reviewer must set status: approved in {source}"
        if status == "draft"
        else f"plan '{plan.name}' is {status} and cannot be run; it was withdrawn in {source}: use its "
        "replacement, or set status: approved there after a review"
    )
    task = TaskPlan(
        task_id=DRAFT,
        action="plan.draft",
        doc=f"Fails: {why}.",
        params={"plan_name": plan.name, "status": status, "message": why},
        retries=0,
    )
    banner = f"> **{status.upper()} — not triggerable.** {why[0].upper()}{why[1:]}.\n\n"
    return DagPlan(
        dag_id=plan_dag_id(spec, plan),
        kind=KIND_RECOVERY_PLAN,
        schedule=None,
        description=f"{status.upper()} — not triggerable: {why}"[:200],
        doc_md=banner + graph.doc_md,
        tasks=(task,),
        extra_tags=plan_tags(plan),
        paused=True,
        display_name=f"{plan_title(plan.name)} (plan, {status})",
        **{**plan_dag_fields(spec, plan, source), "retries": 0},
    )
