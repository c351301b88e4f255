"""Escalation of an unanswered question of a plan run (declaration, approval step, manual step).

Airflow 3.3 keeps one HITL detail per task *try*, and its assignees cannot be changed once written
(asking again in the same try keeps the old ones). So each escalation level is a new try: the try
parks in ``awaiting_input`` with a response timeout that ends when the next level is due; when the
scheduler's timeout sweep resumes it unanswered, the operator raises :class:`EscalationDue` and
Airflow retries the task (the plan builder gives human tasks one retry per level). The next try
asks again with the next level's people added as assignees and tells that level's channels. Try
``n`` is level ``n - 1``; the recovery record reads the levels back from the task's tries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowException

from drflow.contracts import EscalationFacts, PlanFacts, StepDefinition
from drflow.operators.hitl_text import timed_out

log = logging.getLogger(__name__)


class EscalationDue(AirflowException):
    """Nobody answered before the next escalation level was due: Airflow retries, asking that level too."""


def level_of(context: Mapping[str, Any], levels: Sequence[EscalationFacts]) -> int:
    """How many escalation levels this try has reached (0: only the step's own people)."""
    try_number = int(getattr(context.get("ti"), "try_number", 1) or 1)
    return max(0, min(try_number - 1, len(levels)))


def levels_due(levels: Sequence[EscalationFacts], waited_s: float) -> int:
    """How many levels are due once a question has waited ``waited_s`` seconds for its answer."""
    return sum(1 for level in levels if level.after_s <= waited_s)


def question_asked_at(context: Mapping[str, Any], conn_id: str) -> datetime:
    """When the question was first asked: Airflow dates the task's HITL detail once and keeps it over tries.

    Read through the REST API (the recovery record's read-only connection); raises when it cannot be read.
    """
    from drflow.audit.api import AirflowApi, q

    ti = context["ti"]
    path = f"/api/v2/dags/{q(ti.dag_id)}/dagRuns/{q(ti.run_id)}/taskInstances/{q(ti.task_id)}/-1/hitlDetails"
    asked = datetime.fromisoformat(str(AirflowApi.from_connection(conn_id).get(path)["created_at"]))
    return asked if asked.tzinfo else asked.replace(tzinfo=UTC)


def people_at(base: Sequence[str], levels: Sequence[EscalationFacts], level: int) -> list[str]:
    """The step's own people, then those of every level reached, each once."""
    names = [*base, *(name for reached in levels[:level] for name in reached.people)]
    return list(dict.fromkeys(names))


def wait_at(
    levels: Sequence[EscalationFacts], level: int, step_timeout: timedelta | None
) -> tuple[timedelta | None, bool]:
    """How long this try waits, and whether the end of that wait escalates (else the step's timeout applies).

    Level times count from the first time the question was asked; the step's timeout bounds the whole wait.
    """
    asked_s = levels[level - 1].after_s if level else 0
    total_s = step_timeout.total_seconds() if step_timeout is not None else None
    if level < len(levels) and (total_s is None or levels[level].after_s < total_s):
        return timedelta(seconds=levels[level].after_s - asked_s), True
    if total_s is None:
        return None, False
    return timedelta(seconds=max(1.0, total_s - asked_s)), False


class Escalation:
    """Mixin for the HITL operators of a plan: who is asked at this try, for how long, and what happens next."""

    definition: StepDefinition
    facts: PlanFacts
    plan: dict[str, Any]
    response_timeout: timedelta | None
    escalates: bool = False
    level: int = 0

    def escalate_to(self, context: Mapping[str, Any], base: Sequence[str], step_timeout: timedelta | None) -> list[str]:
        """Set this try's level and wait; tell the level's channels when it is a new level. Returns the assignees."""
        levels = self.facts.escalation
        self.level = level_of(context, levels)
        self.response_timeout, self.escalates = wait_at(levels, self.level, step_timeout)
        barred = self.barred(context)
        people = [name for name in people_at(base, levels, self.level) if name in base or name not in barred]
        if self.level:
            self.assign(context, people)
            reached = levels[self.level - 1]
            text = (
                f"Escalated to {reached.name}: {self.what_is_asked()} of plan '{self.facts.plan}' has had no answer "
                f"for {_human(reached.after_s)}; {', '.join(reached.people)} may now answer it too "
                f"(assignees: {', '.join(people)})."
            )
            log.warning("%s", text)
            self.tell(context, reached, text)
        return people

    def what_is_asked(self) -> str:
        return f"step '{self.definition.name}'"

    def barred(self, context: Mapping[str, Any]) -> set[str]:
        """Who may never be an assignee of this question (four eyes: who triggered the run)."""
        return set()

    def assign(self, context: Mapping[str, Any], people: Sequence[str]) -> None:
        """Add `people` to the question's assignees: the detail of the first try is carried over to this one.

        Airflow keeps that detail's assignees, so drflow's plugin in the api-server adds them (see
        ``drflow.dashboard.assignees``), as the notes user. Without it the step's own people can still answer.
        """
        from drflow.audit.api import AuditError, q
        from drflow.audit.notes import notes_api

        ti = context["ti"]
        path = f"/drflow-hitl/dags/{q(ti.dag_id)}/dagRuns/{q(ti.run_id)}/taskInstances/{q(ti.task_id)}/assignees"
        try:
            notes_api(self.facts.notes_conn_id).patch(path, {"add": list(people)})
        except AuditError as exc:
            log.error("could not add %s as assignees of %s: %s", ", ".join(people), self.what_is_asked(), exc)

    def tell(self, context: Mapping[str, Any], level: EscalationFacts, text: str) -> None:
        """Send the escalation to the level's channels; a channel that cannot be reached never stops the question."""
        from drflow.notifiers import channel_notifier

        for name in level.channels:
            channel = self.facts.notifications.get(name)
            if channel is None:
                log.warning("escalation level %s names channel %r, which the spec does not define", level.name, name)
                continue
            try:
                channel_notifier(name, channel.to_params(), "escalation", self.plan, message=text).notify(context)
            except Exception as exc:  # a notification never blocks a recovery
                log.warning("escalation to %s could not be sent on channel %s: %s", level.name, name, exc)

    def resume_level(self, context: Mapping[str, Any]) -> None:
        """Work out the level again on resume: execute_complete runs on a freshly built operator."""
        from drflow.spec.types import parse_duration

        step_timeout = parse_duration(self.definition.timeout) if self.definition.timeout else None
        self.level = level_of(context, self.facts.escalation)
        _, self.escalates = wait_at(self.facts.escalation, self.level, step_timeout)

    def check_escalation(self, context: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """Raise :class:`EscalationDue` when this try's wait ran out and the next level is due."""
        self.resume_level(context)
        if not (self.escalates and timed_out(event)):
            return
        following = self.facts.escalation[self.level]
        raise EscalationDue(
            f"no answer to {self.what_is_asked()} within {_human(following.after_s)} of asking: escalating to "
            f"{following.name} ({', '.join(following.people)}); the task asks again with them added"
        )

    def check_answered_by(self, context: Mapping[str, Any], answer: Mapping[str, Any], base: Sequence[str]) -> None:
        """Fail the step when the answer came from someone who may not answer it yet, or at all.

        ``base`` are the step's own people (with four eyes, the triggering user is already refused). A person
        of an escalation level counts only once the question has waited that level's time since it was
        first asked: a try's level follows its try number, and whoever may edit task instances can clear
        the task to make a new try, or add themselves as an assignee, without a second having passed.
        """
        from airflow.sdk.exceptions import AirflowFailException

        by = answer["by"]
        if answer["timed_out"] or (by and by in base):
            return
        levels, what, plan = self.facts.escalation, self.what_is_asked(), self.facts.plan
        level = level_of(context, levels)
        named = [reached for reached in levels if by and by in reached.people]
        if named and named[0] in levels[:level]:
            try:
                asked = question_asked_at(context, self.facts.audit_conn_id)
            except Exception as exc:  # who may answer cannot be proven: refuse, and say how to fix it
                raise AirflowFailException(
                    f"refused: {by} may answer {what} of plan '{plan}' only from escalation level "
                    f"'{named[0].name}' on, and drflow could not read when the question was first asked ({exc}); "
                    f"to proceed: fix the Airflow API connection the recovery record uses "
                    f"({self.facts.audit_conn_id}) and clear this task"
                ) from exc
            answered = datetime.fromisoformat(answer["at"]) if answer["at"] else datetime.now(UTC)
            waited_s = (answered - asked).total_seconds()
            if named[0] in levels[: levels_due(levels, waited_s)]:
                return
            raise AirflowFailException(
                f"refused: {by} answered {what} of plan '{plan}' {_human(max(0.0, waited_s))} after it was first "
                f"asked, but {by} may answer only from escalation level '{named[0].name}' on, "
                f"{_human(named[0].after_s)} without an answer (this try was made by a retry or a clear, not by "
                f"the time waited); to proceed: clear this task and let {', '.join(base) or 'an approver'} answer "
                f"({by} may once the level is due)"
            )
        allowed = people_at(base, levels, level)
        raise AirflowFailException(
            f"refused: {by or 'an unknown user'} answered {what} of plan '{plan}', but only "
            f"{', '.join(allowed) or 'nobody'} may answer it now; to proceed: clear this task and let one of them "
            "answer, or add the user to the step in the spec (is the auth manager letting users answer tasks "
            "not assigned to them?)"
        )

    def escalations(self) -> list[dict[str, Any]]:
        """The levels this question reached, for the task's result (the record reads them from the tries)."""
        return [
            {"level": level.name, "people": list(level.people), "after_s": level.after_s}
            for level in self.facts.escalation[: self.level]
        ]


def _human(seconds: float) -> str:
    from drflow.spec.types import format_duration

    return format_duration(timedelta(seconds=seconds))
