"""People in a recovery plan (Airflow human-in-the-loop): the disaster declaration, manual steps, go/no-go.

Every operator takes the plan-step contract `step=`, `plan=` (see drflow.plan.recovery) and returns a
JSON dict to XCom. Airflow's own HITL records (who answered what, when) are the audit trail; the
returned dict repeats the decision for the recovery record. Spec text (instructions) is never rendered
as a Jinja template.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk.execution_time.hitl import HITLUser

from drflow.contracts import PlanFacts, StepDefinition
from drflow.operators.escalation import Escalation, level_of, people_at

BODY_LIMIT = 60_000


def _users(names: Sequence[str]) -> list[HITLUser]:
    # HITL users are matched by id; the simple auth manager's id is the user name.
    return [HITLUser(id=name, name=name) for name in names]


def _timeout(step: StepDefinition) -> timedelta | None:
    from drflow.spec.types import parse_duration

    return parse_duration(step.timeout) if step.timeout else None


def _notifiers(plan: Mapping[str, Any]) -> list[Any]:
    from drflow.notifiers import notifiers_for

    return notifiers_for(dict(plan), "approval-needed")


def _user_name(user: Any) -> str | None:
    if isinstance(user, Mapping):
        return str(user.get("name") or user.get("id") or "") or None
    return str(user) if user else None


def _answer(event: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a HITL response the recovery record needs, as JSON."""
    at = event.get("responded_at")
    return {
        "chosen": list(event.get("chosen_options") or []),
        "by": _user_name(event.get("responded_by_user")),
        "at": at.isoformat() if isinstance(at, datetime) else at,
        "timed_out": bool(event.get("timedout")),
        "comment": (event.get("params_input") or {}).get("comment") or "",
    }


def triggering_user(context: Mapping[str, Any]) -> str | None:
    dag_run = context.get("dag_run")
    return getattr(dag_run, "triggering_user_name", None) if dag_run is not None else None


# Runs started by a person logged in to Airflow; every other way (CLI: the OS user name, dag.test,
# schedules, assets, TriggerDagRunOperator) names nobody the auth manager vouched for.
AUTHENTICATED_TRIGGERS = frozenset({"ui", "rest_api"})


def triggered_via(context: Mapping[str, Any], plan: PlanFacts) -> str:
    """How the run was started (Airflow's ``triggered_by``), read through the REST API.

    The task's own dag run does not carry it. The same connection as the recovery record's is used.
    """
    from drflow.audit.api import AirflowApi, q

    dag_run = context["dag_run"]
    api = AirflowApi.from_connection(plan.audit_conn_id)
    run = api.get(f"/api/v2/dags/{q(dag_run.dag_id)}/dagRuns/{q(dag_run.run_id)}")
    return str(run.get("triggered_by") or "unknown")


def unknown_trigger_refusal(plan: PlanFacts, what: str, user: str | None, via: str) -> str:
    """Why a four-eyes question cannot be asked when drflow cannot tell who triggered the run, and what to do."""
    who = f"as {user!r} " if user else ""
    return (
        f"refused: run was started {who}through {via}, not by a person logged in to Airflow, so drflow cannot "
        f"tell whether whoever answers {what} also triggered it, and plan '{plan.plan}' requires four "
        "eyes (one answer cannot prove two people); to proceed: trigger the plan from the Airflow UI or REST "
        "API as a named user (not `airflow dags trigger`, a schedule or a service account), or, after a "
        "review, set four_eyes: false for this step in the spec"
    )


class FourEyes:
    """drflow's own check of who answered, whatever the auth manager let through.

    The responder must be one of the step's people (the approvers, minus the triggering user with four
    eyes); with four eyes the triggering user must be someone Airflow authenticated (UI or REST API).
    """

    definition: StepDefinition
    facts: PlanFacts

    def four_eyes(self) -> bool:
        return True if self.definition.four_eyes is None else self.definition.four_eyes

    def what(self) -> str:
        return f"step '{self.definition.name}'"

    def eligible_approvers(self, context: Mapping[str, Any]) -> list[str]:
        levels = self.facts.escalation
        approvers = people_at(self.definition.approvers, levels, level_of(context, levels))
        trigger = triggering_user(context)
        if self.four_eyes() and trigger:
            approvers = [name for name in approvers if name != trigger]
        return approvers

    def require_known_trigger(self, context: Mapping[str, Any]) -> None:
        """With four eyes, refuse before asking when the run was not started by an authenticated person."""
        from airflow.sdk.exceptions import AirflowFailException

        if not self.four_eyes():
            return
        user = triggering_user(context)
        if user is None:
            raise AirflowFailException(unknown_trigger_refusal(self.facts, self.what(), None, "an unknown way"))
        try:
            via = self.triggered_via(context)
        except Exception as exc:  # without it, four eyes cannot be proven: refuse, and say how to fix it
            raise AirflowFailException(
                f"refused: drflow could not read how this run was started ({exc}), so it cannot prove four eyes "
                f"for {self.what()} of plan '{self.facts.plan}'; to proceed: fix the Airflow API "
                f"connection the recovery record uses ({self.facts.audit_conn_id}) and clear this task"
            ) from exc
        if via not in AUTHENTICATED_TRIGGERS:
            raise AirflowFailException(unknown_trigger_refusal(self.facts, self.what(), user, via))

    def triggered_via(self, context: Mapping[str, Any]) -> str:
        return triggered_via(context, self.facts)

    def check_responder(self, context: Mapping[str, Any], answer: Mapping[str, Any]) -> None:
        """Fail the step, naming both users, when the answer came from someone the spec does not allow."""
        from airflow.sdk.exceptions import AirflowFailException

        if answer["timed_out"]:
            return  # nobody answered: the default (reject / no-go) applies
        by, trigger = answer["by"], triggering_user(context)
        plan = self.facts.plan
        if self.four_eyes() and by and by == trigger:
            raise AirflowFailException(
                f"refused: {by} answered {self.what()} of a run they triggered (triggered by {trigger}, answered "
                f"by {by}), and plan '{plan}' requires four eyes; to proceed: trigger the plan again and let "
                "another approver answer (is simple_auth_manager_all_admins or a permissive auth manager letting "
                "anyone answer?)"
            )
        allowed = self.eligible_approvers(context)
        if by not in allowed:
            raise AirflowFailException(
                f"refused: {by or 'an unknown user'} answered {self.what()} of plan '{plan}' (run triggered by "
                f"{trigger or 'an unknown user'}), but only {', '.join(allowed) or 'nobody'} may answer it; "
                "to proceed: clear this task and let one of them answer, or add the user to the step's approvers "
                "in the spec (is the auth manager letting users answer tasks not assigned to them?)"
            )


def run_header(context: Mapping[str, Any], plan: PlanFacts) -> list[str]:
    """Who triggered the run and why, as Markdown lines shown above every question."""
    params = context.get("params") or {}
    lines = [
        f"**Plan** `{plan.plan}` ({plan.scenario}) · **triggered by** "
        f"{triggering_user(context) or 'unknown'} · **RTO** {plan.rto_s}s · **RPO** {plan.rpo_s}s",
        "",
        f"**Reason**: {params.get('reason') or '(none given)'}",
    ]
    if params.get("notes"):
        lines += ["", f"**Notes**: {params['notes']}"]
    for key, label in (
        ("target_region", "Target region"),
        ("target_time", "Target time"),
        ("incident_started_at", "Incident started at"),
    ):
        if params.get(key):
            lines += ["", f"**{label}**: {params[key]}"]
    if params.get("override_safety"):
        lines += [
            "",
            "**Safety override requested**: promotion checks (lag, recovery state, fencing) may be overridden. "
            "Approve only if you approve that override.",
        ]
    return lines


def format_assessment(task_id: str, result: Any) -> list[str]:
    """An assessment's XCom as Markdown: its `summary` if it has one, else its fields."""
    lines = [f"#### {task_id}"]
    if result is None:
        return [*lines, "_no assessment result (the task left nothing in XCom)_"]
    if not isinstance(result, Mapping):
        return [*lines, str(result)]
    if isinstance(result.get("summary"), str):
        return [*lines, result["summary"]]
    for key, value in result.items():
        if isinstance(value, str | int | float | bool) or value is None:
            text = str(value)
        elif isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
            text = ", ".join(str(v) for v in value) or "none"
        else:
            text = f"`{json.dumps(value, default=str)[:400]}`"
        lines.append(f"- **{key}**: {text}")
    return lines


class DeclarationOperator(FourEyes, Escalation, ApprovalOperator):
    """The disaster declaration: the approvers see the assessment and approve or refuse the run.

    Four eyes: the user who triggered the run is removed from the assigned approvers at run time; if
    nobody is left the task fails and says whom to add. Whatever the auth manager allows, drflow checks
    the answer itself (:class:`FourEyes`). A refusal (or no answer before the timeout)
    skips every step — the record, a teardown, still runs — so nothing changes.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#f5b7b1"

    def __init__(self, *, step: Mapping[str, Any], plan: Mapping[str, Any], **kwargs: Any) -> None:
        self.definition = StepDefinition.from_params(step)
        self.facts = PlanFacts.from_params(plan)
        self.plan = dict(plan)
        super().__init__(
            subject=f"Declare disaster: {self.facts.plan}",
            body="The assessment is filled in when the run reaches this task.",
            assigned_users=_users(self.definition.approvers),
            defaults=ApprovalOperator.REJECT,
            response_timeout=_timeout(self.definition),
            ignore_downstream_trigger_rules=True,
            notifiers=_notifiers(self.plan),
            **kwargs,
        )

    def what(self) -> str:
        return "the disaster declaration"

    def what_is_asked(self) -> str:
        return self.what()

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        approvers = self.eligible_approvers(context)
        if not approvers:
            trigger = triggering_user(context)
            raise AirflowFailException(
                f"refused: nobody may declare this disaster: the only approver, {trigger}, triggered the run and "
                f"plan '{self.facts.plan}' requires four eyes (the approver must not be the person who "
                "triggered it); to proceed: have another person trigger the plan, or add a second approver "
                "to approval.approvers in the spec"
            )
        self.require_known_trigger(context)
        self.assigned_users = _users(self.escalate_to(context, approvers, _timeout(self.definition)))
        self.body = self.build_body(context, approvers)
        return super().execute(context)

    def build_body(self, context: Mapping[str, Any], approvers: list[str]) -> str:
        ti = context["ti"]
        lines = [*run_header(context, self.facts), "", "### Assessment", ""]
        for task_id in self.definition.assess_tasks:
            lines += [*format_assessment(task_id, ti.xcom_pull(task_ids=task_id)), ""]
        lines += ["### What the plan will do if you approve", ""]
        for number, step in enumerate(self.facts.steps, start=1):
            kind = f"automated: {step.action}" if step.action else step.type
            description = f" — {step.description}" if step.description else ""
            lines.append(f"{number}. `{step.name}` ({kind}){description}")
        lines += [
            "",
            "**Approve** starts these steps now. **Reject** skips them all and changes nothing. "
            f"Who may answer: {', '.join(approvers)}.",
        ]
        return "\n".join(lines)[:BODY_LIMIT]

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        self.check_escalation(context, event)
        answer = _answer(event)
        trigger = triggering_user(context)
        self.check_responder(context, answer)
        super().execute_complete(context, event)
        declared = self.APPROVE in answer["chosen"]
        self.log.info(
            "disaster %s by %s%s",
            "declared" if declared else "NOT declared (steps skipped)",
            answer["by"] or "nobody",
            " (timed out)" if answer["timed_out"] else "",
        )
        return {"declared": declared, "triggered_by": trigger, **answer, "escalations": self.escalations()}


class ManualStepOperator(Escalation, HITLOperator):
    """A person does something outside Airflow, following the step's instructions, and answers Done or Failed."""

    template_fields: Sequence[str] = ()
    ui_color = "#fcf3cf"
    DONE, FAILED = "Done", "Failed"

    def __init__(self, *, step: Mapping[str, Any], plan: Mapping[str, Any], **kwargs: Any) -> None:
        from airflow.sdk import Param
        from airflow.sdk.definitions.param import ParamsDict

        self.definition = StepDefinition.from_params(step)
        self.facts = PlanFacts.from_params(plan)
        self.plan = dict(plan)
        # The DAG's params arrive merged in here; the form's own field must be marked as the task's.
        params = ParamsDict(kwargs.pop("params", None) or {})
        params["comment"] = Param("", type="string", description="What you did, or why it failed.", source="task")
        super().__init__(
            subject=f"{self.facts.plan}: {self.definition.description or self.definition.name}",
            options=[self.DONE, self.FAILED],
            body=self.definition.instructions,
            params=params,
            assigned_users=_users(self.definition.assignees),
            response_timeout=_timeout(self.definition),
            notifiers=_notifiers(self.plan),
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        self.assigned_users = _users(self.escalate_to(context, self.definition.assignees, _timeout(self.definition)))
        self.body = "\n".join([self.definition.instructions, "", "---", "", *run_header(context, self.facts)])
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        self.check_escalation(context, event)
        super().execute_complete(context, event)
        answer = _answer(event)
        if self.FAILED in answer["chosen"]:
            comment = f": {answer['comment']}" if answer["comment"] else ""
            raise AirflowFailException(
                f"manual step '{self.definition.name}' was reported failed by {answer['by'] or 'nobody'}{comment}; "
                "to proceed: resolve it by hand, then clear this task and answer Done (later steps are waiting)"
            )
        return {"step": self.definition.name, **answer, "escalations": self.escalations()}


class ApprovalStepOperator(FourEyes, Escalation, ApprovalOperator):
    """A go/no-go decision in the middle of a plan. No-go fails the task: the steps after it never run.

    ``four_eyes`` (default: the plan's ``approval.four_eyes``, filled in by the plan builder) works as
    for the declaration: the triggering user is not asked, and drflow checks who answered.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#f5cba7"

    def __init__(self, *, step: Mapping[str, Any], plan: Mapping[str, Any], **kwargs: Any) -> None:
        self.definition = StepDefinition.from_params(step)
        self.facts = PlanFacts.from_params(plan)
        self.plan = dict(plan)
        super().__init__(
            subject=f"{self.facts.plan}: go / no-go — {self.definition.description or self.definition.name}",
            body=self.definition.instructions or "Approve to go on with the plan, Reject to stop it here.",
            assigned_users=_users(self.definition.approvers),
            response_timeout=_timeout(self.definition),
            notifiers=_notifiers(self.plan),
            **kwargs,
        )

    def four_eyes(self) -> bool:
        return bool(self.definition.four_eyes)

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        approvers = self.eligible_approvers(context)
        if not approvers:
            raise AirflowFailException(
                f"refused: nobody may answer step '{self.definition.name}': its only approver, "
                f"{triggering_user(context)}, triggered the run and the step requires four eyes; to proceed: have "
                "another person trigger the plan, or add a second approver to the step in the spec"
            )
        self.require_known_trigger(context)
        self.assigned_users = _users(self.escalate_to(context, approvers, _timeout(self.definition)))
        instructions = self.definition.instructions or "Approve to go on with the plan, Reject to stop it here."
        self.body = "\n".join(
            [
                instructions,
                "",
                "---",
                "",
                *run_header(context, self.facts),
                "",
                f"Who may answer: {', '.join(approvers)}.",
            ]
        )
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        self.check_escalation(context, event)
        answer = _answer(event)
        self.check_responder(context, answer)
        if self.APPROVE not in answer["chosen"]:
            raise AirflowFailException(
                f"no-go at step '{self.definition.name}' by {answer['by'] or 'nobody (timed out)'}: the plan stops "
                "here and the steps after it do not run; to proceed: do what the no-go asks, then clear this task "
                "to ask again"
            )
        super().execute_complete(context, event)
        return {"step": self.definition.name, "approved": True, **answer, "escalations": self.escalations()}
