"""No step of a plan acts on a declaration or an approval that drflow has not judged itself.

Whoever may edit task instances can mark the declaration (or a go/no-go step) *success* in Airflow: the
task never runs its answer check, and Airflow starts the steps after it. So before a step runs, it reads
each question before it back from Airflow's REST API (the answer Airflow stored and the task's try) and
judges that answer again as the question's own operator would (who may answer, four eyes, escalation
levels due by time). A question with no Approve from an accepted person refuses the step.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, NoReturn

from drflow.operators.hitl_text import COMMENT, user_name


def questions_before(task: Any) -> list[Any]:
    """The declaration and approval steps (:class:`FourEyes` operators) upstream of ``task``, in no order."""
    from drflow.operators.hitl import FourEyes

    return [t for t in task.get_flat_relatives(upstream=True) if isinstance(t, FourEyes)]


def _refuse(why: str, unblock: str) -> NoReturn:
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(f"refused: {why}; to proceed: {unblock}")


def stored_answer(detail: Mapping[str, Any]) -> dict[str, Any]:
    """An answer as Airflow stored it (the HITL detail of the REST API), in :func:`answer_of`'s shape."""
    return {
        "chosen": list(detail.get("chosen_options") or []),
        "by": user_name(detail.get("responded_by_user")),
        "at": detail.get("responded_at"),
        "timed_out": False,
        "comment": str((detail.get("params_input") or {}).get(COMMENT) or "").strip(),
    }


def require_approved(task: Any, context: Mapping[str, Any], conn_id: str, step: str) -> None:
    """Refuse ``step`` unless every question before it was approved by someone drflow accepts."""
    from airflow.sdk.exceptions import AirflowFailException

    from drflow.audit.api import AirflowApi, ApiNotFoundError, q

    questions = questions_before(task)
    if not questions:
        return
    dag_run = context["dag_run"]
    base = f"/api/v2/dags/{q(dag_run.dag_id)}/dagRuns/{q(dag_run.run_id)}/taskInstances"
    for question in questions:
        what = question.what()
        try:
            api = AirflowApi.from_connection(conn_id)
            ti = api.get(f"{base}/{q(question.task_id)}")
            try:
                detail = api.get(f"{base}/{q(question.task_id)}/-1/hitlDetails")
            except ApiNotFoundError:
                detail = {}
        except Exception as exc:  # not proven is refused, whatever the reason
            _refuse(
                f"step '{step}' runs only after {what} was approved, and drflow could not read its answer from "
                f"Airflow ({exc})",
                f"fix the Airflow API connection the recovery record uses ({conn_id}) and clear this task",
            )
        answer = stored_answer(detail)
        if not detail.get("response_received") or question.APPROVE not in answer["chosen"]:
            answered = f"{answer['by'] or 'an unknown user'} answered {', '.join(answer['chosen']) or 'nothing'}"
            got = answered if detail.get("response_received") else "nobody answered it"
            _refuse(
                f"step '{step}' runs only after {what} was approved, but it was not ({got}; the task is "
                f"{ti.get('state')}: was it marked success by hand?), so nothing of the plan runs without it",
                f"clear {question.task_id} and let an approver answer it",
            )
        asked = SimpleNamespace(
            dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=question.task_id, try_number=ti.get("try_number")
        )
        try:
            question.check_responder({**context, "ti": asked}, answer)
        except AirflowFailException as exc:
            _refuse(
                f"step '{step}' runs only after {what} was approved by someone the spec allows, and its Approve "
                f"is not accepted: {exc}",
                f"clear {question.task_id} and let an approver answer it",
            )
