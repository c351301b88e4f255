"""Checks of the exercise program across the spec: names, the plan each exercise rehearses, participants.

Like the other reference checks these read the raw YAML values, so a reviewer sees them together with
the model's errors. Called from drflow.spec.check.check_references.
"""

from __future__ import annotations

from typing import Any

from drflow.spec.check_helpers import choices as _choices
from drflow.spec.check_helpers import duplicates as _duplicates
from drflow.spec.check_helpers import items as _items
from drflow.spec.diagnostics import Diagnostic
from drflow.spec.exercises import NEEDS_PARTICIPANTS
from drflow.spec.source import Source


def check_exercises(source: Source) -> list[Diagnostic]:
    data = source.data
    if not isinstance(data, dict):
        return []
    exercises = _items(data, "exercises")
    found = _duplicates(source, ("exercises",), exercises, "exercise")
    plans = {str(p["name"]): p for _, p in _items(data, "recovery_plans") if isinstance(p.get("name"), str)}
    plans_listed = isinstance(data.get("recovery_plans", []), list)
    for index, exercise in exercises:
        loc = ("exercises", index)
        name, kind, ref = exercise.get("name"), exercise.get("type"), exercise.get("plan")
        if isinstance(ref, str) and plans_listed and ref not in plans:
            message = f"exercise '{name}' rehearses recovery plan '{ref}', which the spec does not have"
            hint = _choices(ref, list(plans), "its recovery plans", "write the plan under 'recovery_plans:' first")
            found.append(source.diagnostic((*loc, "plan"), message, hint))
        participants = exercise.get("participants")
        if kind in NEEDS_PARTICIPANTS and (participants is None or participants == []):
            who = "answers its questions" if kind == "tabletop" else "confirms its start and is on hand for it"
            message = f"{kind} exercise '{name}' has no participants, but someone {who}"
            hint = "list the Airflow users taking part under 'participants:' (a name, or {user, role})"
            found.append(source.diagnostic((*loc, "type"), message, hint))
        plan = plans.get(ref) if isinstance(ref, str) else None
        # A status the model refuses (a typo) has its own message; only draft and retired plans cannot run.
        if kind == "full-scale" and isinstance(plan, dict) and plan.get("status") in ("draft", "retired"):
            message = (
                f"full-scale exercise '{name}' runs plan '{ref}', which is {plan.get('status')} and cannot be triggered"
            )
            hint = "review the plan and set its status: approved, or rehearse it with a tabletop or walkthrough"
            found.append(source.diagnostic((*loc, "plan"), message, hint))
        found += _participant_duplicates(source, loc, participants, name)
    return found


def _participant_duplicates(source: Source, loc: Any, participants: Any, name: Any) -> list[Diagnostic]:
    seen: dict[str, int] = {}
    found = []
    for index, entry in enumerate(participants if isinstance(participants, list) else []):
        user = entry.get("user") if isinstance(entry, dict) else entry
        if not isinstance(user, str):
            continue
        if user in seen:
            message = f"participant '{user}' is listed twice in exercise '{name}'"
            hint = f"the first is item {seen[user] + 1}; list each person once (give them one role)"
            found.append(source.diagnostic((*loc, "participants", index), message, hint))
        else:
            seen[user] = index
    return found
