"""The runbook of a recovery plan, written from the DAG plan Airflow runs (never from the spec beside it).

Every line comes from the plan's ``TaskPlan``s in dependency order and their contracts (``PlanFacts``,
``StepDefinition`` and the spec's typed step): the tasks, their order and upstream, timeouts, retries,
who decides and who is told. So the runbook cannot list a step the DAG lacks, or miss one it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter

from drflow.contracts import PlanFacts, StepDefinition
from drflow.plan.graph import DagPlan, TaskPlan
from drflow.spec.plans import (
    CommandAction,
    FenceAction,
    HttpCallAction,
    LagGateAction,
    NotifyAction,
    PromoteAction,
    RebuildReplicaAction,
    RestoreAction,
    Step,
    SwitchDnsAction,
    ValidateAction,
    ValidateHttpAction,
    ValidateSqlAction,
)
from drflow.spec.types import format_duration
from drflow.spec.validation import describe

FORMATS = ("md", "html")
_STEP = TypeAdapter(Step)
HUMAN = {"plan.declare", "plan.approval", "plan.manual"}


@dataclass(frozen=True)
class RunbookStep:
    """One task of the plan DAG as the runbook shows it."""

    task: TaskPlan
    number: int
    definition: StepDefinition
    typed: Any
    """The spec's own step model (``drflow.spec.plans``), None for drflow's own tasks."""


def plan_steps(dag: DagPlan) -> list[RunbookStep]:
    """The DAG's tasks in dependency order (ties in the plan's order), each with its contracts."""
    order = _topological(dag.tasks)
    steps = []
    for number, task in enumerate(order, start=1):
        definition = StepDefinition.from_params(task.params.get("step") or {"name": task.task_id})
        typed = None
        if task.action not in ("plan.assess", "plan.declare", "plan.record", "plan.status"):
            data = {k: v for k, v in definition.fields.items() if k not in StepDefinition.BUILDER_KEYS}
            typed = _STEP.validate_python(data)
        steps.append(RunbookStep(task=task, number=number, definition=definition, typed=typed))
    return steps


def steps_meta(dag: DagPlan) -> dict[str, dict[str, Any]]:
    """Each task's type, action, verification and description: what the recovery record needs of the plan."""
    return {
        step.task.task_id: {
            "type": step.definition.type,
            "action": step.definition.action,
            "verification": step.definition.verification,
            "description": step.definition.description,
        }
        for step in plan_steps(dag)
    }


def _topological(tasks: Sequence[TaskPlan]) -> list[TaskPlan]:
    done: set[str] = set()
    left = list(tasks)
    order: list[TaskPlan] = []
    while left:
        ready = next((t for t in left if all(u in done for u in t.upstream)), left[0])
        order.append(ready)
        done.add(ready.task_id)
        left.remove(ready)
    return order


def plan_facts_of(dag: DagPlan) -> PlanFacts:
    for task in dag.tasks:
        if "plan" in task.params:
            return PlanFacts.from_params(task.params["plan"])
    raise ValueError(f"{dag.dag_id} is not a recovery plan with steps; give a plan's DAG")


def runbook_markdown(dag: DagPlan) -> str:
    """The runbook of one recovery-plan DAG, as Markdown."""
    facts = plan_facts_of(dag)
    steps = plan_steps(dag)
    declare = next(s for s in steps if s.task.action == "plan.declare")
    status = next((t.split(":", 1)[1] for t in dag.extra_tags if t.startswith("status:")), "approved")
    lines = [
        f"# Runbook: recovery plan `{facts.plan}` — {facts.scenario}",
        "",
        f"> Generated from the task graph of DAG `{dag.dag_id}`, the one Airflow runs: change the spec "
        f"(`{dag.source}`), never this text. `drflow runbook --spec {dag.source} --plan {facts.plan}` prints it.",
        "",
        *([dag.description, ""] if dag.description else []),
        f"- **Status**: {status}",
        f"- **Components**: {', '.join(f'`{c}`' for c in facts.components)}",
        f"- **RTO** {_secs(facts.rto_s)} · **RPO** {_secs(facts.rpo_s)} (the run's deadline is the RTO, from the "
        "moment it is queued)",
    ]
    if facts.primary_region or facts.recovery_region:
        lines.append(f"- **Regions**: {facts.primary_region or '?'} → {facts.recovery_region or '?'}")
    lines.append(f"- **Owner**: {dag.owner}; automated steps retry {dag.retries} time(s) unless a step says otherwise")
    lines += ["", *_contacts(facts, steps), "", *_decisions(steps), "", "## Running it", ""]
    lines.append(
        f"Trigger DAG `{dag.dag_id}` with a **reason** (required); also notes, a target region, a target time for "
        "point-in-time restores, when the incident started, and the safety override. Answer the decision "
        "points in the Airflow UI (*Required actions*), as one of the people named there."
    )
    lines += ["", "## Steps", ""]
    for step in steps:
        lines += _step_lines(step, facts, dag, declare)
    lines += ["", f"Spec: `{dag.source}` · DAG: `{dag.dag_id}`."]
    return "\n".join(lines)


def runbook_html(dag: DagPlan) -> str:
    """The same runbook as one HTML page (raw HTML in spec text is escaped, never passed through)."""
    from html import escape

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(runbook_markdown(dag))
    title = escape(f"Runbook {dag.dag_id}")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>\n'
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.2em .5em}"
        "blockquote{color:#444;border-left:3px solid #bbb;margin-left:0;padding-left:1em}</style>\n"
        f"</head><body>\n{body}</body></html>\n"
    )


def render_runbook(dag: DagPlan, fmt: str = "md") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown runbook format {fmt!r}; use one of {', '.join(FORMATS)}")
    return runbook_html(dag) if fmt == "html" else runbook_markdown(dag)


def _contacts(facts: PlanFacts, steps: list[RunbookStep]) -> list[str]:
    lines = ["## People and channels", ""]
    people: dict[str, list[str]] = {}
    for step in steps:
        d = step.definition
        for user in (*d.approvers, *d.assignees):
            role = "answers" if step.task.action == "plan.manual" else "decides"
            people.setdefault(user, []).append(f"{role} `{step.task.task_id}`")
    for user, roles in people.items():
        lines.append(f"- **{user}** (Airflow user): {', '.join(roles)}")
    if facts.notify:
        lines += ["", "| channel | type | Airflow connection | recipients | told about |", "|---|---|---|---|---|"]
        for name in facts.notify:
            channel = facts.notifications.get(name)
            if channel is None:
                continue
            lines.append(
                f"| {name} | {channel.type} | `{channel.conn_id}` | "
                f"{', '.join(channel.to) or (f'customers (page {channel.page_id})' if channel.page_id else '—')} | "
                f"{', '.join(channel.events)} |"
            )
    else:
        lines.append("- No notification channel: tell people yourself.")
    return lines


def _decisions(steps: list[RunbookStep]) -> list[str]:
    lines = ["## Decision points", ""]
    for step in steps:
        if (decision := decision_point(step)) is not None:
            lines.append(f"- step {step.number}, `{step.task.task_id}`: {decision}")
    return lines


def decision_point(step: RunbookStep) -> str | None:
    """What people decide at this step and what follows, or None when it is no decision point."""
    d, task = step.definition, step.task
    if task.action in ("plan.declare", "plan.approval"):
        eyes = " (not the person who triggered the run)" if d.four_eyes else ""
        wait = f" within {d.timeout}" if d.timeout else ""
        stop = (
            "no step runs, nothing changes and the run ends failed (REFUSED)"
            if task.action == "plan.declare"
            else "the plan stops"
        )
        return f"{', '.join(d.approvers)} answer **Approve** or **Reject**{wait}{eyes}. Reject or no answer: {stop}."
    if task.action == "plan.manual":
        wait = f" within {d.timeout}" if d.timeout else ""
        return (
            f"{', '.join(d.assignees)} do the work and answer **Done** or **Failed** (with a comment){wait}. "
            "Failed or no answer stops the plan."
        )
    if getattr(step.typed, "allow_override", False):
        return (
            "a run triggered with **override safety** goes on when its check refuses (recorded with who set it); "
            "otherwise the refusal stops the plan."
        )
    return None


def step_texts(dag: DagPlan) -> list[tuple[RunbookStep, list[str]]]:
    """Every task of the plan DAG in runbook order with its runbook text (what a tabletop shows of it)."""
    facts = plan_facts_of(dag)
    steps = plan_steps(dag)
    declare = next(s for s in steps if s.task.action == "plan.declare")
    return [(step, _step_lines(step, facts, dag, declare)) for step in steps]


def _step_lines(step: RunbookStep, facts: PlanFacts, dag: DagPlan, declare: RunbookStep) -> list[str]:
    task, d, typed = step.task, step.definition, step.typed
    action = task.action.removeprefix("plan.")
    kind = {"assess": "automated assessment", "declare": "approval", "record": "record"}.get(action)
    if kind is None:
        kind = d.type if d.type in ("manual", "approval") else f"automated: `{action}`"
    extra = [f"after {', '.join(f'`{u}`' for u in task.upstream)}"] if task.upstream else []
    if task.trigger_rule == "all_done":
        extra.append("runs whatever happened before it")
    if task.timeout_s is not None:
        extra.append(f"timeout {_secs(task.timeout_s)}")
    elif d.timeout and task.action in HUMAN:
        extra.append(f"answer within {d.timeout}")
    if task.action not in HUMAN and task.action != "plan.record":
        retries = dag.retries if task.retries is None else task.retries
        extra.append(f"retries {retries}")
    if d.verification:
        extra.append("verification")
    if task.action == "plan.manual":
        extra.append(f"assigned to {', '.join(d.assignees)}")
    elif task.action in ("plan.approval", "plan.declare"):
        extra.append(f"approvers {', '.join(d.approvers)}" + (", four eyes" if d.four_eyes else ""))
    if getattr(typed, "allow_override", False):
        extra.append("override allowed")
    lines = [
        f"{step.number}. `{task.task_id}` ({kind}; {'; '.join(extra)})"
        + (f" — {d.description}" if d.description else "")
    ]
    does = task.doc.strip().split("\n\n")[0]
    body = [f"**Does**: {does}"] if does and does != d.description.strip() else []
    if prerequisite := _prerequisites(action, typed, facts):
        body.append(f"**Needs**: {prerequisite}")
    if validation := _validation(typed):
        body.append(f"**Checks**: {validation}")
    if events := ", ".join(sorted(set(task.notify_on.values()))):
        body.append(f"**Tells** the plan's channels: {events}")
    body.append(f"**If it fails / to undo**: {_rollback(action, typed)}")
    lines += [f"   - {line}" for line in body]
    if d.instructions:
        lines += ["", *(f"   > {line}" if line else "   >" for line in d.instructions.strip().splitlines()), ""]
    return lines


def _targets(facts: PlanFacts, component: str) -> str:
    names = [str(t.get("name")) for t in facts.component(component).targets]
    return ", ".join(names) or "no storage target"


def _prerequisites(action: str, typed: Any, facts: PlanFacts) -> str:
    if action == "assess":
        return "nothing: it only reads (node health and roles, lag, newest backup)"
    if action == "declare":
        return "the assessment in front of the approvers"
    if isinstance(typed, LagGateAction):
        limit = format_duration(typed.max_lag) if typed.max_lag else f"the RPO ({_secs(facts.rpo_s)})"
        node = f"`{typed.node}` of `{typed.component}`"
        return f"{node} reachable, in recovery, replaying, at most {limit} behind the primary"
    if isinstance(typed, FenceAction):
        how = "reachable over its connection" if typed.method == "read-only" else "its host able to run `pg_ctl stop`"
        return f"`{typed.node}` of `{typed.component}` {how}, or proven down"
    if isinstance(typed, PromoteAction):
        guard = f"`{typed.fence}` refusing writes, in recovery or stopped" if typed.fence else "no fence node"
        return f"`{typed.node}` of `{typed.component}` in recovery and within the lag limit; {guard}"
    if isinstance(typed, RebuildReplicaAction):
        return (
            f"`{typed.node}` refusing writes; `{typed.source}` reachable with its replication connection "
            "(a role WITH REPLICATION)"
        )
    if isinstance(typed, RestoreAction):
        what = "a full backup"
        if typed.point_in_time:
            what = "a full backup before the form's target time and WAL archived up to it"
        elif typed.before_incident:
            what = "a full backup finished before the form's incident start"
        where = typed.target or _targets(facts, typed.component)
        return f"{what} of `{typed.component}` in {where}, every object's sha256 intact; room in the work directory"
    if isinstance(typed, SwitchDnsAction):
        return (
            f"aws connection `{typed.conn_id}`; record `{typed.record_name}` ({typed.record_type}) already in zone "
            f"`{typed.hosted_zone_id}`"
        )
    if isinstance(typed, HttpCallAction | ValidateHttpAction):
        return f"http connection `{typed.conn_id}`"
    if isinstance(typed, ValidateSqlAction):
        node = f"the server restored by `{typed.node}`" if typed.node == "restored" else f"`{typed.node}`"
        return f"{node} of `{typed.component}` reachable"
    if isinstance(typed, ValidateAction):
        needs = []
        if typed.node is not None:
            node = "the server an earlier restore step started" if typed.node == "restored" else f"`{typed.node}`"
            needs.append(f"{node} of `{typed.component}` reachable")
        if any(check.type in ("http", "integration", "http-latency") for check in typed.suite):
            needs.append("the endpoints the checks name reachable from the worker")
        return "; ".join(needs)
    if isinstance(typed, NotifyAction):
        return f"the connections of {', '.join(typed.channels)}"
    if isinstance(typed, CommandAction):
        return f"`include/commands/{typed.command[0]}` present, executable and reviewed"
    return ""


def _validation(typed: Any) -> str:
    if isinstance(typed, ValidateAction):
        return "; ".join(describe(check) for check in typed.suite)
    if isinstance(typed, ValidateSqlAction):
        return "; ".join(f"{c.get('name')} = {c.get('expected', 'as recorded')}" for c in typed.checks)
    if isinstance(typed, ValidateHttpAction):
        return f"GET {typed.endpoint} answers {typed.expect_status}"
    if isinstance(typed, HttpCallAction):
        return f"{typed.method} {typed.endpoint or '/'} answers one of {', '.join(map(str, typed.expect_status))}"
    return ""


def _rollback(action: str, typed: Any) -> str:
    if action in ("assess", "declare"):
        return "nothing to undo: nothing has changed yet"
    if action == "record":
        return "nothing to undo; if the API could not be read, fix the audit connection and clear this task"
    if action == "manual":
        return "follow the instructions' own way back; Failed stops the plan, steps before stay done"
    if action == "approval":
        return "Reject stops the plan; what earlier steps changed stays (undo those in reverse order)"
    if isinstance(typed, LagGateAction):
        return "nothing changed; wait for the replica to catch up (or resume its replay), then clear the step"
    if isinstance(typed, FenceAction):
        if typed.method == "stop":
            return f"start `{typed.node}` again with `pg_ctl start` only if no other node was promoted"
        return (
            f"on `{typed.node}`: `ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf();` "
            "only if no other node was promoted"
        )
    if isinstance(typed, PromoteAction):
        return (
            f"a promotion cannot be undone: keep the fenced node fenced and make it a replica of `{typed.node}` "
            "(a `rebuild_replica` step or the failback plan) before it takes writes again"
        )
    if isinstance(typed, RebuildReplicaAction):
        return f"a fresh clone keeps the old data directory of `{typed.node}` as `<dir>.drflow-old-<time>`"
    if isinstance(typed, SwitchDnsAction):
        return f"the step's result holds the old value of `{typed.record_name}`: UPSERT it back"
    if isinstance(typed, RestoreAction):
        return (
            "a failed restore removes what it wrote; to drop a restored copy, stop its server and remove its directory"
        )
    if isinstance(typed, ValidateAction) and typed.node == "restored":
        return (
            "nothing to undo (it reads; the amcheck extension or pgbench tables it created on the restored copy are "
            "gone again); the recovery is not verified: do not announce it, find the cause"
        )
    if isinstance(typed, ValidateSqlAction | ValidateHttpAction | ValidateAction):
        return "nothing to undo (it only reads); the recovery is not verified: do not announce it, find the cause"
    if isinstance(typed, HttpCallAction):
        return f"call the inverse of {typed.method} {typed.endpoint or '/'} by hand"
    if isinstance(typed, NotifyAction):
        return "nothing to undo; a channel that did not deliver is listed in the record"
    if isinstance(typed, CommandAction):
        return f"the way back the reviewed script `{typed.command[0]}` documents"
    return "clear the task to retry it"


def _secs(value: int) -> str:
    return format_duration(timedelta(seconds=value))
