"""Adding assignees to a waiting HITL task: the one write Airflow 3.3's own API has no route for.

Airflow keeps one HITL detail per task instance, carries it over to the next try (its key follows the
task instance's new id) and never changes its assignees, so an escalation cannot reach the next level's
people through Airflow's API. This app, mounted by drflow's plugin in the api-server, adds names to the
assignees of a task of a drflow DAG that is still waiting for its answer. It only adds (nobody is removed),
only while the question is open, and only for a user who may edit the DAG's task instances. Being an
assignee entitles nobody: drflow judges every answer against the spec (the step's people, four eyes, and
the people of the escalation levels the question has waited for; see drflow.operators.escalation), and
the steps after a question judge its answer again, so marking it done by hand runs nothing
(drflow.operators.gates).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, Field, StringConstraints, field_validator
from starlette.concurrency import run_in_threadpool

URL_PREFIX = "/drflow-hitl"
OPEN_STATES = frozenset({"running", "awaiting_input", "deferred"})
MAX_ADDED = 500  # more people than any question of a plan is assigned


UserId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


class AddAssignees(BaseModel):
    add: list[UserId] = Field(
        min_length=1, max_length=MAX_ADDED, description="User ids (names, for the simple auth manager) to add."
    )

    @field_validator("add")
    @classmethod
    def _no_blank_names(cls, names: list[str]) -> list[str]:
        if any(not name.strip() or name != name.strip() for name in names):
            raise ValueError("a user id is blank or has spaces around it; give each user id exactly as Airflow has it")
        return names


async def _editor(request: Request, dag_id: str) -> Any:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    header = request.headers.get("authorization", "")
    user = await resolve_user_from_token(header[7:] if header.lower().startswith("bearer ") else None)
    allowed = get_auth_manager().is_authorized_dag(
        method="PUT", access_entity=DagAccessEntity.TASK_INSTANCE, details=DagDetails(id=dag_id), user=user
    )
    if not allowed:
        raise HTTPException(403, f"this user may not edit the task instances of DAG {dag_id!r}")
    return user


def add_assignees(dag_id: str, run_id: str, task_id: str, names: list[str]) -> list[dict[str, str]]:
    """Add `names` to the open HITL detail of the task's current try; returns the assignees after."""
    from airflow.models.dag import DagTag
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from drflow.plan.graph import MANAGED_BY_TAG

    with create_session() as session:
        if session.scalar(select(DagTag).where(DagTag.dag_id == dag_id, DagTag.name == MANAGED_BY_TAG)) is None:
            raise HTTPException(
                404,
                f"DAG {dag_id!r} is not a drflow DAG (no tag {MANAGED_BY_TAG}): this route adds assignees to "
                "the questions of drflow's recovery plans only; use Airflow's own API for other DAGs",
            )
        ti = session.scalar(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
                TaskInstance.map_index == -1,
            )
        )
        if ti is None:
            raise HTTPException(404, f"no task {task_id!r} in run {run_id!r} of DAG {dag_id!r}")
        if str(ti.state) not in OPEN_STATES:
            raise HTTPException(409, f"task {task_id!r} is {ti.state}, not waiting for an answer")
        detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id).with_for_update())
        if detail is None:
            raise HTTPException(404, f"task {task_id!r} has not asked its question yet")
        if detail.response_received and ti.state != "running":
            raise HTTPException(409, f"task {task_id!r} has its answer already")
        assignees = list(detail.assignees or [])
        known = {a["id"] for a in assignees}
        assignees += [{"id": name, "name": name} for name in dict.fromkeys(names) if name not in known]
        detail.assignees = assignees
        return assignees


def create_app() -> FastAPI:
    app = FastAPI(title="drflow HITL assignees")

    @app.patch("/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/assignees")
    async def patch_assignees(
        dag_id: str, run_id: str, task_id: str, body: AddAssignees, request: Request
    ) -> dict[str, Any]:
        await _editor(request, dag_id)
        assignees = await run_in_threadpool(add_assignees, dag_id, run_id, task_id, body.add)
        return {"assigned_users": assignees}

    return app
