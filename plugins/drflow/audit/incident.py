"""The post-incident report of one plan run, written from its recovery record (see :mod:`drflow.audit.record`).

Pure: no Airflow, no network. The timeline interleaves the trigger, every step's tries, every question put
to people and its answer, the overrides used and the notifications that did not arrive; then the recovery
time and the data lost against the objectives, the slowest steps and the waits on people.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from drflow.units import human_duration
from drflow.when import stored_time

FORMATS = ("md", "html")
SLOWEST = 5


def timeline(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(ISO time, what happened) in time order; events without a time are left out."""
    items: list[tuple[str, str]] = []
    trigger = record.get("triggered_by") or {}
    reason = f": {record['reason']}" if record.get("reason") else ""
    if trigger.get("at"):
        items.append(
            (trigger["at"], f"triggered by {trigger.get('user') or 'unknown'} via {trigger.get('via')}{reason}")
        )
    run = record.get("run") or {}
    if run.get("start"):
        items.append((run["start"], "run started"))
    for step in record.get("steps") or []:
        for attempt in step.get("try_history") or []:
            label = f"`{step['task_id']}` try {attempt.get('try_number')}"
            if attempt.get("start"):
                items.append((attempt["start"], f"{label} started"))
            if attempt.get("end"):
                items.append(
                    (attempt["end"], f"{label} ended {attempt.get('state')} ({_secs(attempt.get('duration_s'))})")
                )
    for answer in record.get("approvals") or []:
        who = ", ".join(answer.get("assigned") or []) or "the assignees"
        if answer.get("asked_at"):
            items.append((answer["asked_at"], f"`{answer['task_id']}` asked {who}"))
        if answer.get("at"):
            comment = f" — “{answer['comment']}”" if answer.get("comment") else ""
            chosen = ", ".join(answer.get("chosen") or [])
            items.append(
                (answer["at"], f"`{answer['task_id']}` {answer['decision']} by {answer.get('by')} ({chosen}){comment}")
            )
    if run.get("end"):
        items.append((run["end"], f"run ended ({run.get('state_when_recorded')} when recorded)"))
    return sorted(items, key=lambda item: stored_time(item[0]) or datetime.max.replace(tzinfo=UTC))


def incident_markdown(record: Mapping[str, Any], *, sources: list[str] | None = None) -> str:
    """The report as Markdown: summary, objectives, timeline, decisions, slowest steps, problems."""
    recovery = record.get("recovery") or {}
    loss = record.get("data_loss") or {}
    trigger = record.get("triggered_by") or {}
    lines = [
        f"# Post-incident report: `{record.get('plan')}` run `{record.get('run_id')}`",
        "",
        f"- **Outcome**: {record.get('outcome')}"
        + (" (partial record: the audit trail was not read)" if record.get("partial") else ""),
        f"- **Spec / scenario**: {record.get('spec')} / {record.get('scenario')}; components "
        + ", ".join(f"`{c}`" for c in record.get("components") or []),
        f"- **DAG**: `{record.get('dag_id')}`",
        f"- **Reason**: {record.get('reason') or '—'}" + (f"; notes: {record['notes']}" if record.get("notes") else ""),
        f"- **Triggered by**: {trigger.get('user') or 'unknown'} via {trigger.get('via') or '?'} "
        f"at {trigger.get('at') or '?'}",
    ]
    exercise = record.get("exercise")
    if isinstance(exercise, Mapping):
        lines.insert(
            2,
            f"> **EXERCISE, not a real incident**: {exercise.get('type')} exercise `{exercise.get('name')}` "
            f"({exercise.get('scenario')}), started by {exercise.get('started_by') or '?'} from run "
            f"`{exercise.get('run_id')}` of `{exercise.get('dag_id')}`.\n",
        )
    if record.get("inputs"):
        lines.append("- **Inputs**: " + ", ".join(f"{k} = {v}" for k, v in record["inputs"].items()))
    lines += ["", "## Objectives", "", "| | measured | objective | met |", "|---|---|---|---|"]
    lines.append(
        f"| RTO (recovery time) | {_secs(recovery.get('measured_s'))} | {_secs(recovery.get('rto_s'))} | "
        f"{_met(recovery.get('rto_met'))} |"
    )
    lines.append(
        f"| RPO (data lost) | {_secs(loss.get('measured_s'))} | {_secs(loss.get('rpo_s') or recovery.get('rpo_s'))} | "
        f"{_met(loss.get('rpo_met'))} |"
    )
    lines += ["", f"Recovery time measured from the run's start to the {recovery.get('measured_to') or '?'}."]
    if recovery.get("waiting_on_people_s") is not None:
        lines.append(f"Of it, waiting on people: {_secs(recovery.get('waiting_on_people_s'))}.")
    for source in loss.get("sources") or []:
        lines.append(f"Data lost at `{source['step']}`: {_secs(source['lost_s'])} ({source['how']}).")
    if not loss.get("sources"):
        lines.append("Data lost: not measured (no promotion or restore step reported it).")
    lines += ["", "## Timeline (UTC)", ""]
    lines += [f"- {_clock(when)} {what}" for when, what in timeline(record)] or ["- nothing recorded"]
    lines += ["", "## Decisions and waits on people", ""]
    approvals = list(record.get("approvals") or [])
    for answer in approvals:
        lines.append(
            f"- `{answer['task_id']}`: {answer['decision']} by {answer.get('by') or 'nobody'} "
            f"(assigned {', '.join(answer.get('assigned') or []) or '?'}), asked {_clock(answer.get('asked_at'))}, "
            f"answered {_clock(answer.get('at'))}, waited {_secs(answer.get('wait_s'))}"
            + (f" — “{answer['comment']}”" if answer.get("comment") else "")
        )
    if not approvals:
        lines.append("- none recorded")
    override = record.get("override") or {}
    if override.get("requested"):
        lines.append(f"- Safety override requested by {override.get('set_by')}")
    for used in override.get("used") or []:
        lines.append(f"- Override used at `{used['step']}` (set by {used['by']}): skipped {used['skipped']}")
    lines += ["", "## Steps", "", "| step | outcome | start | end | duration | tries |", "|---|---|---|---|---|---|"]
    for step in record.get("steps") or []:
        lines.append(
            f"| `{step['task_id']}` | {step.get('outcome')} | {_clock(step.get('start'))} | "
            f"{_clock(step.get('end'))} | {_secs(step.get('duration_s'))} | {step.get('tries')} |"
        )
    lines += ["", "## Slowest steps", ""]
    lines += [f"{n}. `{s['task_id']}` {_secs(s['duration_s'])}{s['why']}" for n, s in enumerate(slowest(record), 1)]
    problems = list(record.get("problems") or [])
    lines += ["", "## Problems", "", *([f"- {p}" for p in problems] or ["- none"])]
    failures = record.get("notification_failures") or []
    if failures:
        lines += ["", "Notifications that did not arrive:"]
        lines += [f"- {f['event']} to {f['channel']} at `{f['task_id']}`: {f['error']}" for f in failures]
    missing = record.get("store_failures") or {}
    if missing:
        lines += ["", "Storage targets that did not take the recovery record:"]
        lines += [f"- {target}: {why}" for target, why in missing.items()]
    if sources:
        lines += ["", "Sources: " + "; ".join(sources) + "."]
    return "\n".join(lines) + "\n"


def slowest(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The longest steps; for a step people answered, the part spent waiting on them."""
    waits = {a["task_id"]: a.get("wait_s") for a in record.get("approvals") or []}
    timed = [s for s in record.get("steps") or [] if isinstance(s.get("duration_s"), int | float)]
    timed.sort(key=lambda s: -float(s["duration_s"]))
    rows = []
    for step in timed[:SLOWEST]:
        wait = waits.get(step["task_id"])
        why = f" (waiting on people {_secs(wait)})" if wait else ""
        if int(step.get("tries") or 0) > 1:
            why += f" ({step['tries']} tries)"
        rows.append({"task_id": step["task_id"], "duration_s": step["duration_s"], "why": why})
    return rows


def incident_html(record: Mapping[str, Any], *, sources: list[str] | None = None) -> str:
    from html import escape

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(incident_markdown(record, sources=sources))
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(str(record.get("run_id")))}'
        "</title>\n<style>body{font-family:sans-serif;max-width:64em;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.2em .5em}</style>\n"
        f"</head><body>\n{body}</body></html>\n"
    )


def render_incident(record: Mapping[str, Any], fmt: str = "md", *, sources: list[str] | None = None) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    return incident_html(record, sources=sources) if fmt == "html" else incident_markdown(record, sources=sources)


def _met(value: Any) -> str:
    if value is True:
        return "yes"
    return "**no**" if value is False else "not measured"


def _secs(value: Any) -> str:
    return human_duration(float(value)) if isinstance(value, int | float) else "—"


def _clock(value: Any) -> str:
    parsed = stored_time(value)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if parsed else "—"
