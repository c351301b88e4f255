"""What the tasks of an exercise DAG are given: the exercise, a tabletop question, a walkthrough check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drflow.contracts.base import need, optional_str


@dataclass(frozen=True)
class ExerciseFacts:
    """One exercise as every task of its DAG knows it (see plan.exercise.exercise_facts)."""

    spec: str
    exercise: str
    type: str
    plan: str
    scenario: str
    components: Sequence[str]
    rto_s: int
    """The strictest RTO of the plan's components (the exercise's objective)."""
    rpo_s: int
    dag_id: str
    plan_dag_id: str
    targets: Sequence[Mapping[str, Any]]
    """Every storage target of the spec, as the spec writes it: the result goes into each."""
    participants: Sequence[str] = ()
    roles: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    answer_timeout: str | None = None
    """How long a question waits (a duration as the spec writes it, ``1d``)."""

    def to_params(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "exercise": self.exercise,
            "type": self.type,
            "plan": self.plan,
            "scenario": self.scenario,
            "components": list(self.components),
            "rto_s": self.rto_s,
            "rpo_s": self.rpo_s,
            "dag_id": self.dag_id,
            "plan_dag_id": self.plan_dag_id,
            "targets": [dict(t) for t in self.targets],
            "participants": list(self.participants),
            "roles": dict(self.roles),
            "description": self.description,
            "answer_timeout": self.answer_timeout,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ExerciseFacts:
        what = "exercise facts"
        return cls(
            spec=str(need(params, "spec", what)),
            exercise=str(need(params, "exercise", what)),
            type=str(need(params, "type", what)),
            plan=str(need(params, "plan", what)),
            scenario=str(need(params, "scenario", what)),
            components=tuple(str(c) for c in need(params, "components", what)),
            rto_s=int(need(params, "rto_s", what)),
            rpo_s=int(need(params, "rpo_s", what)),
            dag_id=str(need(params, "dag_id", what)),
            plan_dag_id=str(need(params, "plan_dag_id", what)),
            targets=tuple(dict(t) for t in need(params, "targets", what)),
            participants=tuple(str(p) for p in params.get("participants") or ()),
            roles={str(k): str(v) for k, v in (params.get("roles") or {}).items()},
            description=str(params.get("description") or ""),
            answer_timeout=optional_str(params.get("answer_timeout")),
        )

    def who(self, user: str) -> str:
        role = self.roles.get(user)
        return f"{user} ({role})" if role else user


@dataclass(frozen=True)
class TabletopQuestion:
    """One question of a tabletop: the briefing, a decision point of the plan, or the debrief."""

    task_id: str
    kind: str
    """``brief``, ``decision`` or ``debrief``."""
    title: str
    body: str
    """Markdown: the plan's steps up to this point and the decision, written from the plan graph."""
    options: Sequence[str]
    step: str | None = None
    """The plan DAG's task this decision point is (None for the briefing and the debrief)."""
    plan_answer: str | None = None
    """The option by which the plan goes on (what its runbook expects), for the result."""

    def to_params(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "options": list(self.options),
            "step": self.step,
            "plan_answer": self.plan_answer,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TabletopQuestion:
        what = "tabletop question"
        return cls(
            task_id=str(need(params, "task_id", what)),
            kind=str(need(params, "kind", what)),
            title=str(need(params, "title", what)),
            body=str(need(params, "body", what)),
            options=tuple(str(o) for o in need(params, "options", what)),
            step=optional_str(params.get("step")),
            plan_answer=optional_str(params.get("plan_answer")),
        )


@dataclass(frozen=True)
class WalkthroughCheck:
    """One plan step as a walkthrough checks it: the plan task's action and what earlier steps will have done."""

    task_id: str
    action: str
    """The plan task's action (``plan.gate_lag``, ``plan.declare`` …)."""
    fenced_before: Sequence[str] = ()
    """``component:node`` fenced by a step that runs before this one in the plan."""

    def to_params(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "action": self.action, "fenced_before": list(self.fenced_before)}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> WalkthroughCheck:
        return cls(
            task_id=str(need(params, "task_id", "walkthrough check")),
            action=str(need(params, "action", "walkthrough check")),
            fenced_before=tuple(str(n) for n in params.get("fenced_before") or ()),
        )
