"""A tabletop's result from the participants' answers. Pure: the result task hands in what each question returned.

Per decision point: what was chosen against what the plan expects, who answered, how long the decision took
(from the previous answer to this one), the answer given and the gaps named. A decision point passes when it
was answered, the choice is the plan's way forward (where the plan has one) and no gap was named; the
tabletop passes when every question does. A named gap is a finding to act on, so it fails the exercise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from drflow.contracts import ExerciseFacts, TabletopQuestion
from drflow.when import stored_time


def tabletop_findings(
    questions: Sequence[TabletopQuestion], answers: Mapping[str, Mapping[str, Any] | None]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One finding per question, and the session's timings (``session_started_at``, ``session_s``)."""
    findings = []
    previous: datetime | None = None
    first: datetime | None = None
    for question in questions:
        answer = answers.get(question.task_id)
        at = stored_time(answer.get("at")) if answer else None
        if answer is None or answer.get("timed_out") or at is None:
            findings.append(
                {
                    "step": question.step or question.task_id,
                    "ok": False,
                    "detail": f"{question.task_id}: no answer (nobody answered in time, or the question failed)",
                    "question": question.task_id,
                }
            )
            continue
        took = round((at - previous).total_seconds(), 3) if previous else None
        first = first or at
        previous = at
        chosen = ", ".join(answer.get("chosen") or []) or "nothing"
        gaps = _lines(answer.get("gaps"))
        off_plan = question.plan_answer is not None and question.plan_answer not in (answer.get("chosen") or [])
        parts = [f"{question.task_id}: {answer.get('by') or 'someone'} chose {chosen}"]
        if off_plan:
            parts.append(f"the plan expects {question.plan_answer}")
        if took is not None:
            parts.append(f"decided in {took:.0f}s")
        if answer.get("answer"):
            parts.append(f"answer: {answer['answer']}")
        if gaps:
            parts.append("gaps: " + " | ".join(gaps))
        if answer.get("follow_ups"):
            parts.append(f"follow-ups: {answer['follow_ups']}")
        findings.append(
            {
                "step": question.step or question.task_id,
                "ok": not gaps and not off_plan,
                "detail": "; ".join(parts),
                "question": question.task_id,
                "chosen": list(answer.get("chosen") or []),
                "by": answer.get("by"),
                "answered_at": at.isoformat(),
                "decision_s": took,
                "gaps": gaps,
            }
        )
    session = {
        "session_started_at": first.isoformat() if first else None,
        "session_s": round((previous - first).total_seconds(), 3) if first and previous else None,
    }
    return findings, session


def answered_by(findings: Sequence[Mapping[str, Any]], facts: ExerciseFacts) -> list[str]:
    """The participants in spec order, then anyone else who answered."""
    seen = [str(f["by"]) for f in findings if f.get("by")]
    return list(dict.fromkeys([*facts.participants, *seen]))


def _lines(text: Any) -> list[str]:
    return [line.strip(" -*\t") for line in str(text or "").splitlines() if line.strip(" -*\t")]
