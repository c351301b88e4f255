"""People in a recovery plan (Airflow human-in-the-loop): the disaster declaration, manual steps, go/no-go.

Every operator takes the plan-step contract `step=`, `plan=` (see drflow.plan.recovery) and returns a
JSON dict to XCom. Airflow's own HITL records (who answered what, when) are the audit trail; the
returned dict repeats the decision for the recovery record. Spec text (instructions) is never rendered
as a Jinja template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator

from drflow.contracts import PlanFacts, StepDefinition
from drflow.operators.escalation import Escalation, RefusedAnswer
from drflow.operators.hitl_text import (
    COMMENT,
    answer_of,
    format_assessment,
    hitl_users,
    run_header,
    triggering_user,
)

BODY_LIMIT = 60_000


def _timeout(step: StepDefinition) -> timedelta | None:
    from drflow.spec.types import parse_duration

    return parse_duration(step.timeout) if step.timeout else None


def _notifiers(plan: Mapping[str, Any]) -> list[Any]:
    from drflow.notifiers import notifiers_for

    return notifiers_for(dict(plan), "approval-needed")


def _comment_param(description: str) -> Any:
    """An optional comment field: nullable, or Airflow's form keeps every button disabled until it is filled."""
    from airflow.sdk import Param

    return Param(None, type=["null", "string"], title="Comment", description=description, source="task")


def _with_comment(kwargs: dict[str, Any], description: str) -> Any:
    """The task's form: the DAG's params arrive merged in here, so the comment field is marked as the task's."""
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict(kwargs.pop("params", None) or {})
    params[COMMENT] = _comment_param(description)
    return params


def four_eyes_notice(trigger: str | None, approvers: Sequence[str], four_eyes: bool) -> list[str]:
    """Above the question: the triggering user sees why Airflow will answer their click with Access Denied."""
    if not (four_eyes and trigger):
        return []
    who = ", ".join(approvers) or "nobody"
    return [
        f"> **{trigger}: you triggered this run, so you are not an approver of it** (four eyes). Airflow refuses "
        f"an answer from {trigger} (*Access Denied*); {who} must answer.",
        "",
    ]


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


class FourEyes(Escalation):
    """drflow's own check of who answered, whatever the auth manager let through.

    The responder must be one of the step's people (the approvers, minus the triggering user with four
    eyes), or a person of an escalation level the question has waited for; with four eyes the triggering
    user must be someone Airflow authenticated (UI or REST API).
    """

    definition: StepDefinition
    facts: PlanFacts

    def four_eyes(self) -> bool:
        return True if self.definition.four_eyes is None else self.definition.four_eyes

    def what(self) -> str:
        return f"step '{self.definition.name}'"

    def trigger_user(self, context: Mapping[str, Any]) -> str | None:
        """Who triggered the run: the participant who started it, for a run a full-scale exercise triggered."""
        from drflow.operators.exercise_chain import exercise_mark

        mark = exercise_mark(context.get("dag_run"))
        return str(mark["started_by"]) if mark and mark.get("started_by") else triggering_user(context)

    def barred(self, context: Mapping[str, Any]) -> set[str]:
        trigger = self.trigger_user(context)
        return {trigger} if self.four_eyes() and trigger else set()

    def eligible_approvers(self, context: Mapping[str, Any]) -> list[str]:
        """The step's own approvers who may answer (with four eyes, not the triggering user)."""
        trigger = self.trigger_user(context)
        return [name for name in self.definition.approvers if not (self.four_eyes() and trigger and name == trigger)]

    def require_known_trigger(self, context: Mapping[str, Any]) -> None:
        """With four eyes, refuse before asking when the run was not started by an authenticated person."""
        from airflow.sdk.exceptions import AirflowFailException

        if not self.four_eyes():
            return
        user = self.trigger_user(context)
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
        from drflow.operators.exercise_chain import exercise_mark

        if via == "operator" and exercise_mark(context.get("dag_run")) is not None:
            self.require_exercise_start(context, user)
        elif via not in AUTHENTICATED_TRIGGERS:
            raise AirflowFailException(unknown_trigger_refusal(self.facts, self.what(), user, via))

    def require_exercise_start(self, context: Mapping[str, Any], user: str | None) -> None:
        """A run a full-scale exercise triggered: prove that ``user`` approved the exercise's start."""
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.audit.api import AirflowApi
        from drflow.operators.exercise_chain import verify_exercise_start

        try:
            verify_exercise_start(
                AirflowApi.from_connection(self.facts.audit_conn_id), context["dag_run"], self.facts.spec
            )
        except Exception as exc:  # not proven is refused, whatever the reason
            raise AirflowFailException(
                f"refused: this run claims to be started by {user!r} through an exercise, but drflow cannot prove it "
                f"({exc}), so four eyes cannot be proven for {self.what()} of plan '{self.facts.plan}'; to proceed: "
                "start the exercise from its DAG's start question, or trigger the plan from the Airflow UI or REST API"
            ) from exc

    def triggered_via(self, context: Mapping[str, Any]) -> str:
        return triggered_via(context, self.facts)

    def check_responder(self, context: Mapping[str, Any], answer: Mapping[str, Any]) -> None:
        """Refuse the answer (:class:`RefusedAnswer`), naming both users, when the spec does not allow it."""
        if answer["timed_out"]:
            return  # nobody answered: the default (reject / no-go) applies
        by, trigger = answer["by"], self.trigger_user(context)
        if self.four_eyes() and by and by == trigger:
            raise RefusedAnswer(
                f"{by} answered {self.what()} of a run they triggered (triggered by {trigger}, answered by {by}), "
                f"and plan '{self.facts.plan}' requires four eyes",
                f"let another approver ({', '.join(self.eligible_approvers(context)) or 'nobody'}) answer (is "
                "simple_auth_manager_all_admins or a permissive auth manager letting anyone answer?)",
            )
        self.check_answered_by(context, answer, self.eligible_approvers(context))

    def judged(self, context: Mapping[str, Any], answer: Mapping[str, Any]) -> bool:
        """Whether drflow accepts the answer; a refused one is logged and kept, and the caller asks again."""
        try:
            self.check_responder(context, answer)
        except RefusedAnswer as refused:
            self.note_refusal(context, refused, answer)
            return False
        return True


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
        params = _with_comment(kwargs, "Optional: why you approve or refuse; shown in the run's note and the record.")
        # No `defaults`: Airflow's form highlights the default option, and Approve is the approvers' action.
        # No answer in time comes back as a timeout, which drflow takes as a refusal (execute_complete).
        super().__init__(
            subject=f"Declare disaster: {self.facts.plan}",
            body="The assessment is filled in when the run reaches this task.",
            assigned_users=hitl_users(self.definition.approvers),
            params=params,
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
            trigger = self.trigger_user(context)
            raise AirflowFailException(
                f"refused: nobody may declare this disaster: the only approver, {trigger}, triggered the run and "
                f"plan '{self.facts.plan}' requires four eyes (the approver must not be the person who "
                "triggered it); to proceed: have another person trigger the plan, or add a second approver "
                "to approval.approvers in the spec"
            )
        self.require_known_trigger(context)
        self.assigned_users = hitl_users(self.escalate_to(context, approvers))
        self.body = self.build_body(context, approvers)
        return self.ask(context, super().execute)

    def build_body(self, context: Mapping[str, Any], approvers: list[str]) -> str:
        ti = context["ti"]
        lines = four_eyes_notice(self.trigger_user(context), approvers, self.four_eyes())
        lines += [*run_header(context, self.facts), "", "### Assessment", ""]
        for task_id in self.definition.assess_tasks:
            lines += [*format_assessment(task_id, ti.xcom_pull(task_ids=task_id)), ""]
        lines += ["### What the plan will do if you approve", ""]
        for number, step in enumerate(self.facts.steps, start=1):
            kind = f"automated: {step.action}" if step.action else step.type
            description = f" — {step.description}" if step.description else ""
            lines.append(f"{number}. `{step.name}` ({kind}){description}")
        wait = self.definition.timeout
        lines += [
            "",
            "**Approve** starts these steps now. **Reject** runs none of them and changes nothing: the run ends "
            "*failed* with a note saying who refused and why"
            + (f"; so does no answer within {wait}" if wait else "")
            + f". Who may answer: {', '.join(approvers)}.",
        ]
        return "\n".join(lines)[:BODY_LIMIT]

    def execute_complete(self, context: Any, event: dict[str, Any], level: int | None = None) -> Any:
        from airflow.providers.standard.operators.hitl import HITLOperator
        from airflow.sdk.exceptions import AirflowFailException

        if self.resume(context, event, level):
            return self.execute(context)  # the next level is due: ask again with its people
        if "error" in event and event.get("error_type") != "timeout":
            return super().execute_complete(context, event)  # Airflow's own error, as Airflow reports it
        answer = answer_of(event)
        trigger = self.trigger_user(context)
        if not self.judged(context, answer):
            return self.execute(context)
        declared = not answer["timed_out"] and self.APPROVE in answer["chosen"]
        result = {"declared": declared, "triggered_by": trigger, **answer, **self.outcome(context)}
        if declared:
            super().execute_complete(context, event)
            self.log.info("disaster declared by %s", answer["by"])
            return result
        if "error" not in event:
            HITLOperator.execute_complete(self, context, event)  # checks the answer; skips nothing
        # The record (a teardown) reads this result; the steps after a failed declaration never run.
        context["ti"].xcom_push(key="return_value", value=result)
        raise AirflowFailException(self.refusal(answer))

    def refusal(self, answer: Mapping[str, Any]) -> str:
        nothing = "Nothing was changed: no step of the plan ran. To recover anyway, trigger the plan again"
        if answer["timed_out"]:
            who = ", ".join(self.definition.approvers)
            return (
                f"REFUSED: nobody answered the disaster declaration of plan '{self.facts.plan}' within "
                f"{self.definition.timeout} ({who} could have). {nothing}, with an approver at hand"
            )
        why = f" (“{answer['comment']}”)" if answer["comment"] else " (no reason given)"
        return (
            f"REFUSED by {answer['by']}: the disaster declaration of plan '{self.facts.plan}' was refused{why}. "
            f"{nothing} with a new reason"
        )


class ManualStepOperator(Escalation, HITLOperator):
    """A person does something outside Airflow, following the step's instructions, and answers Done or Failed."""

    template_fields: Sequence[str] = ()
    ui_color = "#fcf3cf"
    DONE, FAILED = "Done", "Failed"

    def __init__(self, *, step: Mapping[str, Any], plan: Mapping[str, Any], **kwargs: Any) -> None:
        self.definition = StepDefinition.from_params(step)
        self.facts = PlanFacts.from_params(plan)
        self.plan = dict(plan)
        # Optional for Done; Failed needs one, which the form cannot express: execute_complete asks again.
        params = _with_comment(kwargs, "What you did (optional), or what failed (needed to answer Failed).")
        super().__init__(
            subject=f"{self.facts.plan}: {self.definition.description or self.definition.name}",
            options=[self.DONE, self.FAILED],
            body=self.definition.instructions,
            params=params,
            assigned_users=hitl_users(self.definition.assignees),
            response_timeout=_timeout(self.definition),
            notifiers=_notifiers(self.plan),
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        self.assigned_users = hitl_users(self.escalate_to(context, self.definition.assignees))
        self.body = self.build_body(context)
        return self.ask(context, super().execute)

    def build_body(self, context: Mapping[str, Any]) -> str:
        return "\n".join(
            [
                self.definition.instructions,
                "",
                f"**{self.DONE}** when it is done (a comment is welcome). **{self.FAILED}** needs a comment "
                "saying what failed: an answer of Failed without one is asked again.",
                "",
                "---",
                "",
                *run_header(context, self.facts),
            ]
        )

    def execute_complete(self, context: Any, event: dict[str, Any], level: int | None = None) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        if self.resume(context, event, level):
            return self.execute(context)  # the next level is due: ask again with its people
        if event.get("error_type") == "timeout":  # no retry: a new try would find the same timeout passed
            raise AirflowFailException(
                f"nobody answered manual step '{self.definition.name}' within {self.definition.timeout} "
                f"({', '.join(self.definition.assignees)} could have); the steps after it do not run; to proceed: "
                "do the step by hand, then clear this task and answer Done"
            )
        super().execute_complete(context, event)
        answer = answer_of(event)
        try:
            self.check_answered_by(context, answer, self.definition.assignees)
        except RefusedAnswer as refused:
            self.note_refusal(context, refused, answer)
            return self.execute(context)
        if self.FAILED in answer["chosen"] and not answer["comment"] and not answer["timed_out"]:
            self.log.warning(
                "%s answered Failed without a comment; a failed step must say what failed: asking again",
                answer["by"] or "somebody",
            )
            return self.execute(context)  # a new question (Airflow clears the answer) in the same try
        if self.FAILED in answer["chosen"]:
            comment = f": {answer['comment']}" if answer["comment"] else ""
            raise AirflowFailException(
                f"manual step '{self.definition.name}' was reported failed by {answer['by'] or 'nobody'}{comment}; "
                "to proceed: resolve it by hand, then clear this task and answer Done (later steps are waiting)"
            )
        return {"step": self.definition.name, **answer, **self.outcome(context)}


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
            assigned_users=hitl_users(self.definition.approvers),
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
                f"{self.trigger_user(context)}, triggered the run and the step requires four eyes; to proceed: have "
                "another person trigger the plan, or add a second approver to the step in the spec"
            )
        self.require_known_trigger(context)
        self.assigned_users = hitl_users(self.escalate_to(context, approvers))
        instructions = self.definition.instructions or "Approve to go on with the plan, Reject to stop it here."
        self.body = "\n".join(
            [
                *four_eyes_notice(triggering_user(context), approvers, self.four_eyes()),
                instructions,
                "",
                "---",
                "",
                *run_header(context, self.facts),
                "",
                f"Who may answer: {', '.join(approvers)}.",
            ]
        )
        return self.ask(context, super().execute)

    def execute_complete(self, context: Any, event: dict[str, Any], level: int | None = None) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        if self.resume(context, event, level):
            return self.execute(context)  # the next level is due: ask again with its people
        answer = answer_of(event)
        if answer["timed_out"]:
            raise AirflowFailException(
                f"no-go at step '{self.definition.name}': nobody answered within {self.definition.timeout} "
                f"({', '.join(self.definition.approvers)} could have); the plan stops here and the steps after it do "
                "not run; to proceed: clear this task to ask again"
            )
        if not self.judged(context, answer):
            return self.execute(context)
        if self.APPROVE not in answer["chosen"]:
            raise AirflowFailException(
                f"no-go at step '{self.definition.name}' by {answer['by'] or 'nobody (timed out)'}: the plan stops "
                "here and the steps after it do not run; to proceed: do what the no-go asks, then clear this task "
                "to ask again"
            )
        super().execute_complete(context, event)
        return {"step": self.definition.name, "approved": True, **answer, **self.outcome(context)}
