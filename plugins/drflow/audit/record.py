"""Build the recovery record of a plan run from the raw API JSON that :func:`gather_run` collected.

Pure: no Airflow, no network. Who triggered comes from the dag run (``triggering_user_name``), who
approved or refused from the HITL details (``responded_by_user``; the event log also lists refused
403/409 attempts, so it never decides who answered), timings from the task instances and their tries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from drflow.audit.data_loss import data_loss
from drflow.audit.escalation import escalations
from drflow.units import human_duration
from drflow.when import stored_time

FORMAT_VERSION = 1
_FAR = datetime.max.replace(tzinfo=UTC)
APPROVE = "Approve"
REJECT = "Reject"
FAILED_STATES = frozenset({"failed", "upstream_failed"})
DONE_STATES = frozenset({"success"})
UNFINISHED_STATES = frozenset(
    {"running", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "deferred", "awaiting_input", "restarting"}
)
OUTCOME_TEXT = {
    "success": "done",
    "failed": "failed",
    "upstream_failed": "not run: an earlier step failed",
    "skipped": "skipped",
    "removed": "removed from the plan",
    None: "not run",
}


def build_record(
    plan: Mapping[str, Any],
    facts: Mapping[str, Any],
    *,
    steps_meta: Mapping[str, Mapping[str, Any]] | None = None,
    record_task_id: str = "record",
    now: datetime | None = None,
    step_results: Mapping[str, Any] | None = None,
    notification_failures: Mapping[str, list[Mapping[str, Any]]] | None = None,
    status_page: Mapping[str, list[Mapping[str, Any]]] | None = None,
    refused_answers: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The recovery record as JSON.

    ``steps_meta`` maps task ids to what the DAG knows of each step (``type``, ``action``,
    ``verification``, ``description``); the API does not carry it. ``step_results`` maps task ids to
    their XCom results (overrides are read from them); ``notification_failures`` maps task ids to the
    notifications their tasks could not deliver; ``status_page`` maps task ids to what they did on status
    pages (the incident's id; its resolution comes later, from the DAG's success callback);
    ``refused_answers`` the answers drflow refused before asking a question again.
    """
    now = now or datetime.now(UTC)
    meta = steps_meta or {}
    dag_run = dict(facts.get("dag_run") or {})
    conf = dag_run.get("conf") or {}
    tis = [ti for ti in facts.get("task_instances") or [] if ti.get("task_id") != record_task_id]
    hitl_by_task = {_hitl_task_id(h): h for h in facts.get("hitl_details") or []}
    tries = facts.get("tries") or {}

    steps = [_step(ti, tries.get(ti["task_id"]) or [], meta.get(ti["task_id"]) or {}, hitl_by_task) for ti in tis]
    steps.sort(key=lambda s: (stored_time(s["start"]) or _FAR, s["task_id"]))
    approvals = [_approval(h) for h in facts.get("hitl_details") or []]
    triggered_by = dag_run.get("triggering_user_name")
    exercise = conf.get("exercise") if isinstance(conf.get("exercise"), Mapping) else None
    if exercise and dag_run.get("triggered_by") == "operator" and exercise.get("started_by"):
        triggered_by = exercise["started_by"]  # the participant who started the exercise (checked by the declaration)
    trigger_event = _trigger_event(facts.get("trigger_events") or [], dag_run, triggered_by)

    problems: list[str] = []
    refusal = next((a for a in approvals if a["decision"] == "refused"), None)
    # A declaration nobody answered in time is a refusal too: its task says so in its result.
    declined = any(isinstance(r, Mapping) and r.get("declared") is False for r in (step_results or {}).values())
    failed = [s["task_id"] for s in steps if s["state"] in FAILED_STATES]
    unfinished = [s["task_id"] for s in steps if s["state"] in UNFINISHED_STATES]
    if refusal is not None or declined:
        outcome = "refused"
    elif failed:
        outcome = "failed"
        problems += [f"step {s['task_id']} {s['outcome']}" for s in steps if s["state"] in FAILED_STATES]
    elif unfinished:
        outcome = "incomplete"
        problems.append(f"steps still unfinished when the record was taken: {', '.join(unfinished)}")
    else:
        outcome = "recovered"
    for approval in approvals:
        if approval["by"] and triggered_by and approval["by"] == triggered_by:
            problems.append(
                f"{approval['task_id']} was answered by {approval['by']}, who also triggered the run (no four eyes)"
            )

    overrides = _overrides(conf, triggered_by, step_results or {})
    for override in overrides["used"]:
        problems.append(
            f"step {override['step']} went on without proof, by the safety override {override['by']} set: "
            f"{override['skipped']} ({override['refusal']})"
        )
    notifications = _notification_failures(notification_failures or {})
    for failure in notifications:
        problems.append(
            f"notification channel {failure['channel']} (connection {failure['conn_id']}) could not deliver "
            f"{failure['event']} at step {failure['task_id']}: {failure['error']}"
        )

    recovery = _recovery_time(plan, dag_run, steps, approvals, outcome, now)
    if recovery["rto_met"] is False and outcome == "recovered":
        problems.append(
            f"recovery took {human_duration(recovery['measured_s'])}, over the RTO of {human_duration(plan['rto_s'])}"
        )
    return {
        "format_version": FORMAT_VERSION,
        "kind": "recovery-record",
        "spec": plan.get("spec"),
        "plan": plan.get("plan"),
        "scenario": plan.get("scenario"),
        "components": list((plan.get("components") or {}).keys()),
        "dag_id": facts.get("dag_id") or dag_run.get("dag_id"),
        "run_id": facts.get("run_id") or dag_run.get("dag_run_id"),
        "outcome": outcome,
        "reason": conf.get("reason"),
        # A full-scale exercise marks its run (drflow.operators.exercise_fullscale): reports say "exercise".
        "exercise": exercise,
        "notes": conf.get("notes") or None,
        "run_note": dag_run.get("note"),
        "inputs": {k: conf.get(k) for k in ("target_region", "target_time", "incident_started_at") if conf.get(k)},
        "triggered_by": {
            "user": triggered_by,
            "via": dag_run.get("triggered_by"),
            "at": (trigger_event or {}).get("when") or dag_run.get("queued_at"),
        },
        "approvals": approvals,
        "escalations": escalations(steps, approvals, plan, now),
        "refused_answers": [dict(entry) for entry in refused_answers],
        "override": overrides,
        "notification_failures": notifications,
        "status_page": [
            {"task_id": task_id, **dict(done)} for task_id, items in (status_page or {}).items() for done in items
        ],
        "run": {
            "state_when_recorded": dag_run.get("state"),
            "queued_at": dag_run.get("queued_at"),
            "start": dag_run.get("start_date"),
            "end": dag_run.get("end_date"),
            "run_type": dag_run.get("run_type"),
        },
        "steps": steps,
        "recovery": recovery,
        "data_loss": data_loss(plan, conf, dag_run, step_results or {}),
        "problems": problems,
        "events": [_event(e) for e in facts.get("event_logs") or []],
        "trigger_event": _event(trigger_event) if trigger_event else None,
        "recorded_at": now.isoformat(),
    }


def _overrides(conf: Mapping[str, Any], triggered_by: str | None, results: Mapping[str, Any]) -> dict[str, Any]:
    """Whether the run asked for the safety override, who set it, and every step that used it."""
    used = []
    for task_id, result in results.items():
        if isinstance(result, Mapping) and result.get("overridden"):
            override = result.get("override") or {}
            used.append(
                {
                    "step": task_id,
                    "by": override.get("by") or triggered_by,
                    "reason": override.get("reason") or conf.get("reason"),
                    "skipped": override.get("skipped") or "a safety check",
                    "refusal": result.get("refusal") or "skipped before it ran",
                }
            )
    requested = bool(conf.get("override_safety"))
    return {"requested": requested, "set_by": triggered_by if requested else None, "used": used}


def _notification_failures(failures: Mapping[str, list[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    return [
        {"task_id": task_id, **{k: str(f.get(k)) for k in ("event", "channel", "conn_id", "error")}}
        for task_id, items in failures.items()
        for f in items or []
        if isinstance(f, Mapping)
    ]


def build_partial_record(
    plan: Mapping[str, Any], dag_run: Mapping[str, Any], error: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """What the record task knows without the API (its own context), when the API cannot be read."""
    now = now or datetime.now(UTC)
    conf = dag_run.get("conf") or {}
    return {
        "format_version": FORMAT_VERSION,
        "kind": "recovery-record",
        "partial": True,
        "spec": plan.get("spec"),
        "plan": plan.get("plan"),
        "scenario": plan.get("scenario"),
        "components": list((plan.get("components") or {}).keys()),
        "dag_id": dag_run.get("dag_id"),
        "run_id": dag_run.get("run_id"),
        "outcome": "unknown",
        "reason": conf.get("reason"),
        "exercise": conf.get("exercise") if isinstance(conf.get("exercise"), Mapping) else None,
        "notes": conf.get("notes") or None,
        "run_note": dag_run.get("note"),
        "triggered_by": {"user": dag_run.get("triggering_user_name"), "via": None, "at": None},
        "approvals": [],
        "run": {"start": _iso(dag_run.get("start_date"))},
        "steps": [],
        "recovery": {"measured_s": None, "rto_s": plan.get("rto_s"), "rpo_s": plan.get("rpo_s"), "rto_met": None},
        "problems": [f"the audit trail could not be read: {error}"],
        "events": [],
        "recorded_at": now.isoformat(),
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _step(
    ti: Mapping[str, Any],
    tries: list[Mapping[str, Any]],
    meta: Mapping[str, Any],
    hitl_by_task: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    state = ti.get("state")
    step: dict[str, Any] = {
        "task_id": ti["task_id"],
        "type": meta.get("type"),
        "action": meta.get("action"),
        "verification": bool(meta.get("verification")),
        "operator": ti.get("operator"),
        "state": state,
        "outcome": OUTCOME_TEXT.get(state, str(state)),
        "start": ti.get("start_date"),
        "end": ti.get("end_date"),
        "duration_s": _duration(ti),
        "tries": int(ti.get("try_number") or 0),
        "try_history": [
            {
                "try_number": t.get("try_number"),
                "state": t.get("state"),
                "start": t.get("start_date"),
                "end": t.get("end_date"),
                "duration_s": _duration(t),
                "hostname": t.get("hostname"),
            }
            for t in sorted(tries, key=lambda t: int(t.get("try_number") or 0))
        ],
    }
    if meta.get("description"):
        step["description"] = meta["description"]
    if meta.get("timeout_s") is not None:
        step["timeout_s"] = meta["timeout_s"]
    hitl = hitl_by_task.get(ti["task_id"])
    if hitl is not None:
        answer = _approval(hitl)
        step["answer"] = {k: answer[k] for k in ("decision", "chosen", "by", "at", "wait_s", "comment")}
        if answer["decision"] in ("approved", "refused"):
            step["outcome"] = f"{answer['decision']} by {answer['by']}"
        elif answer["decision"] == "answered":
            step["outcome"] = f"{step['outcome']}: {', '.join(answer['chosen'])} (by {answer['by']})"
        else:
            step["outcome"] = f"{step['outcome']}: nobody answered"
    return step


def _approval(hitl: Mapping[str, Any]) -> dict[str, Any]:
    chosen = list(hitl.get("chosen_options") or [])
    user = hitl.get("responded_by_user") or {}
    if not hitl.get("response_received"):
        decision = "unanswered"
    elif REJECT in chosen:
        decision = "refused"
    elif APPROVE in chosen:
        decision = "approved"
    else:
        decision = "answered"
    params_input = hitl.get("params_input") or {}
    return {
        "task_id": _hitl_task_id(hitl),
        "subject": hitl.get("subject"),
        "decision": decision,
        "chosen": chosen,
        "by": user.get("name") or user.get("id") if isinstance(user, Mapping) else user,
        "at": hitl.get("responded_at"),
        "asked_at": hitl.get("created_at"),
        "wait_s": _seconds_between(hitl.get("created_at"), hitl.get("responded_at")),
        "assigned": [u.get("name") or u.get("id") for u in hitl.get("assigned_users") or [] if isinstance(u, Mapping)],
        "comment": params_input.get("comment") or "",
    }


def _hitl_task_id(hitl: Mapping[str, Any]) -> str:
    ti = hitl.get("task_instance") or {}
    return str(ti.get("task_id") or hitl.get("task_id") or "?")


def _recovery_time(
    plan: Mapping[str, Any],
    dag_run: Mapping[str, Any],
    steps: list[dict[str, Any]],
    approvals: list[dict[str, Any]],
    outcome: str,
    now: datetime,
) -> dict[str, Any]:
    """Run start to the end of the last verification step (else of the last step that ran), against the RTO."""
    rto_s = plan.get("rto_s")
    start = _run_start(dag_run, steps)
    ran = [s for s in steps if s["tries"] and s["end"]]
    verifications = [s for s in ran if s["verification"] and s["state"] == "success"]
    last = max(verifications or ran, key=lambda s: stored_time(s["end"]) or _FAR) if ran else None
    if verifications:
        measured_to = f"end of verification step {last['task_id']}" if last else ""
    else:
        measured_to = f"end of the last step ({last['task_id']})" if last else "end of the run"
    end = last["end"] if last else dag_run.get("end_date")
    result: dict[str, Any] = {
        "from": start,
        "to": end,
        "measured_to": measured_to,
        "measured_s": None,
        "elapsed_s": _seconds_between(start, now),
        "waiting_on_people_s": round(sum(a["wait_s"] or 0.0 for a in approvals), 3),
        "rto_s": rto_s,
        "rpo_s": plan.get("rpo_s"),
        "rto_met": None,
    }
    if outcome == "refused":
        result.update(to=None, measured_to="not measured: the disaster declaration was refused")
    elif outcome == "recovered":
        measured = _seconds_between(start, end)
        result["measured_s"] = measured
        if measured is not None and isinstance(rto_s, int | float):
            result["rto_met"] = measured <= rto_s
    else:
        # Not recovered (yet): the RTO is missed once the time since the start exceeds it.
        result.update(to=None, measured_to=f"not measured: the plan is {outcome}")
        elapsed = result["elapsed_s"]
        if elapsed is not None and isinstance(rto_s, int | float) and elapsed > rto_s:
            result["rto_met"] = False
    return result


def _run_start(dag_run: Mapping[str, Any], steps: list[dict[str, Any]]) -> Any:
    """When the run started: a clear moves the run's start (and queued_at) to the clear; its first tries stay."""
    starts = [dag_run.get("start_date") or dag_run.get("queued_at")]
    starts += [t["start"] for s in steps for t in s["try_history"]]
    known = [value for value in starts if stored_time(value) is not None]
    return min(known, key=lambda value: stored_time(value) or _FAR) if known else None


def _trigger_event(
    events: list[Mapping[str, Any]], dag_run: Mapping[str, Any], user: str | None
) -> Mapping[str, Any] | None:
    """The trigger event of this run: the triggering user's latest one logged before the run was queued."""
    anchor = stored_time(dag_run.get("queued_at") or dag_run.get("run_after"))
    candidates = [e for e in events if (user is None or e.get("owner") == user) and stored_time(e.get("when"))]
    if anchor is not None:
        before = [e for e in candidates if (stored_time(e["when"]) or _FAR) <= anchor]
        candidates = before or candidates
    return max(candidates, key=lambda e: stored_time(e["when"]) or _FAR) if candidates else None


def _event(event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "when": event.get("when"),
        "event": event.get("event"),
        "owner": event.get("owner"),
        "task_id": event.get("task_id"),
        "try_number": event.get("try_number"),
        "extra": _json_or_text(event.get("extra")),
    }


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _duration(ti: Mapping[str, Any]) -> float | None:
    value = ti.get("duration")
    if isinstance(value, int | float):
        return round(float(value), 3)
    return _seconds_between(ti.get("start_date"), ti.get("end_date"))


def _seconds_between(start: Any, end: Any) -> float | None:
    a, b = stored_time(start), stored_time(end)
    if a is None or b is None:
        return None
    return round((b - a).total_seconds(), 3)
