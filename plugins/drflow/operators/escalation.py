"""Escalation of an unanswered question of a plan run (declaration, approval step, manual step).

The level a question has reached is a function of one thing: how long it has waited since it was first
asked. Airflow dates the task's HITL detail when the question is first asked and carries it over to
every later try (a retry, a worker crash, a clear), so that date, read through the REST API, is the
clock; "now" is the api-server's own clock (the ``Date`` of the same answer), so a worker's skewed clock
never makes a level due early. The try number plays no part.

Escalating needs no new try: the question parks in ``awaiting_input`` until the next level is due; when
the scheduler's timeout sweep resumes it unanswered, the operator asks again in the same try, with the
level's people added as assignees (Airflow 3.3 cannot change them, so drflow's plugin route does, see
``drflow.dashboard.assignees``) and the level's channels told. The task's retries stay for real failures.
A new try (after a crash or a clear) asks at the level due by then and waits only until the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from drflow.audit.escalation import Due, QuestionClockError, due_after, waited_since
from drflow.contracts import EscalationFacts, PlanFacts, StepDefinition
from drflow.operators.hitl_text import timed_out

log = logging.getLogger(__name__)
LEVEL_KWARG = "level"  # the level already announced in this try, carried to execute_complete by Airflow


class RefusedAnswer(AirflowFailException):
    """drflow does not accept an answer: ``why`` says whose and why, ``unblock`` what a person can do."""

    def __init__(self, why: str, unblock: str) -> None:
        super().__init__(f"refused: {why}; to proceed: {unblock}")
        self.why = why


def question_clock(context: Mapping[str, Any], conn_id: str) -> tuple[datetime | None, datetime]:
    """When the question was first asked (None: not yet asked) and the api-server's time now.

    Read through the REST API (the recovery record's read-only connection); raises :class:`QuestionClockError`
    when the question's date cannot be read.
    """
    from drflow.audit.api import AirflowApi, ApiNotFoundError, q

    try:
        ti = context["ti"]
        path = f"/api/v2/dags/{q(ti.dag_id)}/dagRuns/{q(ti.run_id)}/taskInstances/{q(ti.task_id)}/-1/hitlDetails"
        api = AirflowApi.from_connection(conn_id)
        try:
            detail = api.get(path)
        except ApiNotFoundError:
            return None, api.server_date or datetime.now(UTC)
        asked = datetime.fromisoformat(str(detail["created_at"]))
    except Exception as exc:  # who may answer cannot be proven: say why, and how to fix it
        raise QuestionClockError(
            f"drflow could not read when the question was first asked ({exc}); to proceed: fix the Airflow API "
            f"connection the recovery record uses ({conn_id}) and clear this task"
        ) from exc
    return (asked if asked.tzinfo else asked.replace(tzinfo=UTC)), api.server_date or datetime.now(UTC)


def question_asked_at(context: Mapping[str, Any], conn_id: str) -> datetime:
    """When the question was first asked; raises :class:`QuestionClockError` when that is unknown."""
    asked, _ = question_clock(context, conn_id)
    if asked is None:
        raise QuestionClockError(f"Airflow has no record of the question of task {context['ti'].task_id}")
    return asked


def people_at(base: Sequence[str], levels: Sequence[EscalationFacts], level: int) -> list[str]:
    """The step's own people, then those of every level reached, each once."""
    names = [*base, *(name for reached in levels[:level] for name in reached.people)]
    return list(dict.fromkeys(names))


class Escalation:
    """Mixin for the HITL operators of a plan: who is asked now, for how long, and what happens next."""

    definition: StepDefinition
    facts: PlanFacts
    plan: dict[str, Any]
    response_timeout: timedelta | None
    level: int = 0
    told: int | None = None  # the level announced earlier in this try (None: a new try)

    def step_timeout_s(self) -> float | None:
        from drflow.spec.types import parse_duration

        return parse_duration(self.definition.timeout).total_seconds() if self.definition.timeout else None

    def due_now(self, context: Mapping[str, Any], *, read: bool = False) -> Due:
        """Where the question stands now, by the time it has waited (a question not yet asked waits from now).

        Without escalation levels the clock is read only when ``read`` asks for it.
        """
        after_s = [float(level.after_s) for level in self.facts.escalation]
        if not (after_s or read):
            return due_after(after_s, self.step_timeout_s(), 0.0)
        asked, now = question_clock(context, self.facts.audit_conn_id)
        return due_after(after_s, self.step_timeout_s(), 0.0 if asked is None else waited_since(asked, now))

    def escalate_to(self, context: Mapping[str, Any], base: Sequence[str]) -> list[str]:
        """Set the level due and this asking's wait; add the level's people and tell its channels. Returns them."""
        levels = self.facts.escalation
        due = self.due_now(context)
        self.level, self.response_timeout = due.level, due.wait
        if due.expired:  # cleared after its timeout: asked again for a whole timeout, every level reached
            timeout_s = self.step_timeout_s()
            self.response_timeout = timedelta(seconds=timeout_s) if timeout_s else None
        barred = self.barred(context)
        people = [name for name in people_at(base, levels, self.level) if name in base or name not in barred]
        if not self.level:
            return people
        self.assign(context, people)
        what, plan = self.what_is_asked(), self.facts.plan
        if self.told is None:  # a new try (a crash, a retry, a clear): the level was due before it
            reached = levels[self.level - 1]
            text = (
                f"Asked again at escalation level {reached.name}: {what} of plan '{plan}' has had no answer for "
                f"{_human(reached.after_s)} or more and its task was retried or cleared; "
                f"{', '.join(people)} may answer it."
            )
            log.warning("%s", text)
            self.tell(context, reached, text)
            return people
        for reached in levels[self.told : self.level]:
            text = (
                f"Escalated to {reached.name}: {what} of plan '{plan}' has had no answer for "
                f"{_human(reached.after_s)}; {', '.join(reached.people)} may now answer it too "
                f"(assignees: {', '.join(people)})."
            )
            log.warning("%s", text)
            self.tell(context, reached, text)
        return people

    def ask(self, context: Mapping[str, Any], park: Callable[[Any], Any]) -> Any:
        """Ask (``park``: the HITL operator's execute), and let the resume know the level announced."""
        from airflow.sdk.exceptions import TaskAwaitingInput

        try:
            return park(context)
        except TaskAwaitingInput as parked:
            parked.kwargs = {**(parked.kwargs or {}), LEVEL_KWARG: self.level}
            raise

    def resume(self, context: Mapping[str, Any], event: Mapping[str, Any], level: int | None) -> bool:
        """On resume: whether the question must be asked again now (its wait ended before the step's timeout).

        execute_complete runs on a freshly built operator: ``level`` is what this try announced before parking.
        """
        self.told, self.level = level, level or 0
        if not (timed_out(event) and self.facts.escalation):
            return False  # an answer, or the end of a wait that was the step's whole timeout
        due = self.due_now(context)
        self.level = due.level
        if due.expired:
            return False
        if due.level > (level or 0):
            log.warning(
                "no answer to %s within %s of asking: escalating to %s",
                self.what_is_asked(),
                _human(self.facts.escalation[due.level - 1].after_s),
                self.facts.escalation[due.level - 1].name,
            )
        return True

    def what_is_asked(self) -> str:
        return f"step '{self.definition.name}'"

    def barred(self, context: Mapping[str, Any]) -> set[str]:
        """Who may never be an assignee of this question (four eyes: who triggered the run)."""
        return set()

    def assign(self, context: Mapping[str, Any], people: Sequence[str]) -> None:
        """Add `people` to the question's assignees (those already there stay; adding one twice changes nothing).

        Airflow keeps the detail's first assignees, so drflow's plugin in the api-server adds them (see
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

    def check_answered_by(self, context: Mapping[str, Any], answer: Mapping[str, Any], base: Sequence[str]) -> None:
        """Refuse the answer when it came from someone who may not answer it yet, or at all.

        ``base`` are the step's own people (with four eyes, the triggering user is already refused). A person
        of an escalation level counts only once the question has waited that level's time since it was
        first asked, measured between Airflow's dates of the question and of the answer: whoever may edit
        task instances can clear the task or add themselves as an assignee, and neither makes a level due.
        """
        by = answer["by"]
        if answer["timed_out"] or (by and by in base):
            return
        levels, what, plan = self.facts.escalation, self.what_is_asked(), self.facts.plan
        named = next((reached for reached in levels if by and by in reached.people), None)
        who = ", ".join(base) or "an approver"
        if named is None:
            raise RefusedAnswer(
                f"{by or 'an unknown user'} answered {what} of plan '{plan}', but only {who} (and the people of "
                "its escalation levels, once due) may answer it",
                "let one of them answer, or add the user to the step in the spec (is the auth manager letting "
                "users answer tasks not assigned to them?)",
            )
        try:
            asked = question_asked_at(context, self.facts.audit_conn_id)
        except QuestionClockError as exc:  # who may answer cannot be proven: refuse, and say how to fix it
            raise AirflowFailException(
                f"refused: {by} may answer {what} of plan '{plan}' only from escalation level '{named.name}' on, "
                f"and {exc}"
            ) from exc
        answered = datetime.fromisoformat(answer["at"]) if answer["at"] else datetime.now(UTC)
        waited_s = (answered - asked).total_seconds()
        if levels.index(named) < due_after([float(level.after_s) for level in levels], None, waited_s).level:
            return
        raise RefusedAnswer(
            f"{by} answered {what} of plan '{plan}' {_human(max(0.0, waited_s))} after it was first asked, but "
            f"{by} may answer only from escalation level '{named.name}' on, {_human(named.after_s)} without an "
            "answer (an assignee added early, or a try made by a retry or a clear, makes no level due)",
            f"let {who} answer ({by} may once the level is due)",
        )

    def note_refusal(self, context: Mapping[str, Any], refused: RefusedAnswer, answer: Mapping[str, Any]) -> None:
        """Keep a refused answer for the record and log it, then the caller asks again (same try, same due
        assignees); past the step's timeout nobody can answer in time any more, so the refusal fails the step."""
        ti = context["ti"]
        entry = {"task_id": ti.task_id, "by": answer["by"], "at": answer["at"], "why": refused.why}
        ti.xcom_push(key=REFUSED_KEY, value=[*self.refusals(context), entry])
        try:
            due = self.due_now(context, read=True)
        except QuestionClockError as exc:  # without the time waited, whether the timeout passed is unknown
            raise refused from exc
        if due.expired:
            raise refused
        log.error("refused: %s; asking again: the people it is assigned to may still answer", refused.why)

    def refusals(self, context: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The answers drflow refused earlier in this try (each one logged, then the question asked again)."""
        ti = context["ti"]
        return list(ti.xcom_pull(task_ids=ti.task_id, key=REFUSED_KEY) or [])

    def outcome(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """For the task's result: the levels this question reached and the answers drflow refused."""
        return {
            "escalations": [
                {"level": level.name, "people": list(level.people), "after_s": level.after_s}
                for level in self.facts.escalation[: self.level]
            ],
            "refused_answers": self.refusals(context),
        }


REFUSED_KEY = "drflow_refused_answers"


def _human(seconds: float) -> str:
    from drflow.spec.types import format_duration

    return format_duration(timedelta(seconds=seconds))
