"""A walkthrough: every step of a plan in check-only mode. Airflow-free (the CLI and the DAG's tasks share it).

:func:`check_step` runs the check-only twin of one plan task (the twins live next to their actions:
`engines/postgres/readiness`, `actions/traffic_ready`, `actions/command_ready`, `jobs/restore_ready`, and
:mod:`drflow.exercises.people` for approvers and channels) and returns a finding
``{"step", "ok", "detail", "action"}``. Nothing it calls changes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from drflow.contracts import ExerciseFacts, PlanFacts, StepDefinition, WalkthroughCheck
from drflow.exercises.people import approvers_ready, channels_ready, connection_problem, declaration_ready

Check = Callable[[StepDefinition, PlanFacts, WalkthroughCheck], dict[str, Any]]


def check_step(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    """Would this plan task succeed now? A check that cannot run at all is a finding too, never an error."""
    action = check.action.removeprefix("plan.")
    try:
        result = CHECKS[action](step, plan, check) if action in CHECKS else _no_check(action)
    except Exception as exc:  # an unexpected failure of a check is what a walkthrough must report, not hide
        result = {"ok": False, "detail": f"the check itself failed: {type(exc).__name__}: {exc}"}
    return {"step": check.task_id, "action": action, **result}


def _no_check(action: str) -> dict[str, Any]:
    return {"ok": False, "detail": f"drflow has no check-only version of action {action!r}: check it by hand"}


def _pg(plan: PlanFacts, component: str, node: str) -> tuple[str, Any]:
    from drflow.engines.postgres.conninfo import PgConnInfo

    facts = plan.component(component)
    if node not in facts.nodes:
        raise LookupError(f"component '{component}' has no node '{node}' (nodes: {', '.join(facts.nodes) or 'none'})")
    return node, PgConnInfo.from_airflow_conn(facts.nodes[node].conn_id, dbname=facts.database)


def _connections(plan: PlanFacts, component: str, *nodes: str) -> str:
    known = plan.component(component).nodes
    problems = [connection_problem(known[n].conn_id) for n in nodes if n in known]
    return "; ".join(p for p in problems if p)


def _assess(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    """The assessment only reads and reports what it finds (it never fails): ready, with what it would find."""
    from drflow.engines.postgres.readiness import node_ready

    component = str(step.component)
    nodes = plan.component(component).nodes
    if not nodes:
        return {"ok": True, "detail": f"'{component}' has no database: the assessment has nothing to reach"}
    found = []
    for name in nodes:
        if problem := _connections(plan, component, name):
            found.append(f"{name}: {problem}")
            continue
        result = node_ready(*_pg(plan, component, name), "primary" if name == "primary" else "replica")
        found.append(result["detail"] if result["ok"] else f"{name} will be reported: {result['detail']}")
    return {"ok": True, "detail": "; ".join(found)}


def _max_lag_s(step: StepDefinition, plan: PlanFacts) -> float:
    from drflow.spec.types import parse_duration

    value = step.fields.get("max_lag")
    return parse_duration(value).total_seconds() if value else float(plan.rpo_s)


def _gate_lag(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    from drflow.engines.postgres.readiness import lag_ready

    component, node = str(step.component), str(step.fields["node"])
    if problem := _connections(plan, component, node):
        return {"ok": False, "detail": problem}
    primary = _pg(plan, component, "primary") if node != "primary" else None
    return lag_ready(primary, _pg(plan, component, node), _max_lag_s(step, plan))


def _fence(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    from drflow.engines.postgres.readiness import fence_ready
    from drflow.hosts import LocalHost

    component, node = str(step.component), str(step.fields.get("node") or "primary")
    if problem := _connections(plan, component, node):
        return {"ok": False, "detail": problem}
    facts = plan.component(component)
    return fence_ready(
        *_pg(plan, component, node),
        str(step.fields.get("method") or "read-only"),
        data_dir=facts.nodes[node].data_directory,
        host=LocalHost(),
        bin_dir=Path(str(facts.bin_dir)),
    )


def _promote(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    from drflow.engines.postgres.readiness import promote_ready

    component, node = str(step.component), str(step.fields["node"])
    fence = step.fields.get("fence")
    if problem := _connections(plan, component, node, *([str(fence)] if fence else [])):
        return {"ok": False, "detail": problem}
    return promote_ready(
        _pg(plan, component, node),
        _pg(plan, component, str(fence)) if fence else None,
        fenced_before=f"{component}:{fence}" in check.fenced_before,
        max_lag_s=_max_lag_s(step, plan),
        primary=_pg(plan, component, "primary") if node != "primary" else None,
    )


def _rebuild(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    from drflow.engines.postgres.conninfo import PgConnInfo
    from drflow.engines.postgres.readiness import rebuild_ready

    component, node, source = str(step.component), str(step.fields["node"]), str(step.fields["source"])
    facts = plan.component(component)
    replication = facts.nodes[source].replication_conn_id if source in facts.nodes else None
    if replication and (problem := connection_problem(replication)):
        return {"ok": False, "detail": problem}
    source_conn = (source, PgConnInfo.from_airflow_conn(replication, dbname=facts.database)) if replication else None
    return rebuild_ready(node, facts.nodes[node].data_directory, source_conn, Path(str(facts.bin_dir)))


def _switch_dns(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    from drflow.actions.traffic_ready import switch_dns_ready
    from drflow.engines.aws.clients import open_client

    f = step.fields
    conn_id = str(f["conn_id"])
    if problem := connection_problem(conn_id):
        return {"ok": False, "detail": problem}
    # Route53 is global; plain boto3 on the CLI (as the snapshot engines do), the amazon provider in tasks.
    client = open_client("route53", conn_id, "us-east-1")
    record_type = str(f.get("record_type") or "CNAME")
    return switch_dns_ready(
        conn_id, str(f["hosted_zone_id"]), str(f["record_name"]), record_type, str(f["value"]), client=client
    )


def _http(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    from urllib.parse import urlsplit

    from drflow.actions.traffic_ready import tcp_ready
    from drflow.connections import get_connection

    conn_id = str(step.fields["conn_id"])
    if problem := connection_problem(conn_id):
        return {"ok": False, "detail": problem}
    conn = get_connection(conn_id)
    host = conn.host or ""
    url = host if "://" in host else f"{conn.schema or 'http'}://{host}"
    parts = urlsplit(url)
    if conn.port and parts.port is None:
        url = f"{parts.scheme}://{parts.hostname}:{conn.port}"
    return tcp_ready(conn_id, url)


def _restore(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    from drflow.jobs.restore_ready import restore_ready

    component = str(step.component)
    targets = list(plan.component(component).targets)
    wanted = step.fields.get("target")
    if wanted:
        targets = [t for t in targets if t.get("name") == wanted]
        if not targets:
            return {"ok": False, "detail": f"storage target '{wanted}' receives no backups of '{component}'"}
    return restore_ready(
        plan.spec,
        component,
        targets,
        point_in_time=bool(step.fields.get("point_in_time")),
        rpo_s=plan.rpo_s,
        work_dir=step.work_dir,
    )


def _validate_sql(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    from drflow.engines.postgres.readiness import node_ready
    from drflow.spec.statement import refusal

    refused = [f"{c.get('name')}: {why}" for c in step.fields.get("checks") or [] if (why := refusal(str(c["query"])))]
    if refused:
        return {"ok": False, "detail": "checks that would be refused: " + "; ".join(refused)}
    node, component = str(step.fields["node"]), str(step.component)
    count = len(step.fields.get("checks") or [])
    if node == "restored":
        if not step.restored_by:
            return {"ok": False, "detail": "no restore step of this component runs before it"}
        return {"ok": True, "detail": f"{count} read-only check(s) for the server that {step.restored_by} restores"}
    if problem := _connections(plan, component, node):
        return {"ok": False, "detail": problem}
    result = node_ready(*_pg(plan, component, node))
    return {**result, "detail": f"{result['detail']}; {count} read-only check(s) to run after the steps before it"}


def _validate(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    from drflow.engines.postgres.readiness import node_ready
    from drflow.spec.plans import ValidateAction

    spec_step = step.spec_step(ValidateAction)
    count = f"{len(spec_step.suite)} check(s) ({', '.join(c.type for c in spec_step.suite)})"
    if spec_step.node is None:
        return {"ok": True, "detail": f"{count} over the network, run after the steps before it"}
    if spec_step.node == "restored":
        if not step.restored_by:
            return {"ok": False, "detail": "no restore step of this component runs before it"}
        return {"ok": True, "detail": f"{count} for the server that {step.restored_by} restores"}
    component, node = spec_step.component, str(spec_step.node)
    if problem := _connections(plan, component, node):
        return {"ok": False, "detail": problem}
    result = node_ready(*_pg(plan, component, node))
    return {**result, "detail": f"{result['detail']}; {count} to run after the steps before it"}


def _notify(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    return channels_ready(plan, [str(c) for c in step.fields.get("channels") or []])


def _command(step: StepDefinition, plan: PlanFacts, check: WalkthroughCheck) -> dict[str, Any]:
    from drflow.actions.command_ready import command_ready

    return command_ready([str(part) for part in step.fields.get("command") or []])


CHECKS: dict[str, Check] = {
    "assess": _assess,
    "declare": lambda step, plan, check: declaration_ready(step, plan),
    "approval": lambda step, plan, check: approvers_ready(step, "approvers"),
    "manual": lambda step, plan, check: approvers_ready(step, "assignees"),
    "gate_lag": _gate_lag,
    "fence": _fence,
    "promote": _promote,
    "rebuild_replica": _rebuild,
    "switch_dns": _switch_dns,
    "http_call": _http,
    "validate_http": _http,
    "restore": _restore,
    "validate_sql": _validate_sql,
    "validate": _validate,
    "notify": _notify,
    "run_command": _command,
}


def walkthrough_result(
    facts: ExerciseFacts,
    findings: Sequence[Mapping[str, Any]],
    started_at: datetime,
    finished_at: datetime,
    *,
    dag_id: str | None,
    run_id: str | None,
) -> dict[str, Any]:
    """The exercise result of a walkthrough: passed when every step would succeed today."""
    from drflow.store.exercise_results import exercise_result

    failing = [str(f["step"]) for f in findings if not f["ok"]]
    return exercise_result(
        spec=facts.spec,
        exercise=facts.exercise,
        type="walkthrough",
        plan=facts.plan,
        scenario=facts.scenario,
        components=facts.components,
        dag_id=dag_id,
        run_id=run_id,
        started_at=started_at,
        finished_at=finished_at,
        participants=facts.participants,
        outcome="failed" if failing else "passed",
        rto_s=None,
        rpo_s=None,
        objectives=(facts.rto_s, facts.rpo_s),
        findings=findings,
        would_fail=failing,
    )


def check_plan_tasks(checks: Sequence[tuple[Any, WalkthroughCheck]]) -> list[dict[str, Any]]:
    """Check each plan task (a TaskPlan: ``task_id`` and ``params``) with its check, in the order given."""
    findings = []
    for task, check in checks:
        step = StepDefinition.from_params(task.params.get("step") or {"name": task.task_id})
        findings.append(check_step(step, PlanFacts.from_params(task.params["plan"]), check))
    return findings
