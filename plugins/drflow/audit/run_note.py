"""The note a recovery-plan run carries in the Airflow UI: its outcome first, from the recovery record.

The first word is what happened (`RECOVERED`, `REFUSED`, `FAILED`, `INCOMPLETE`), with `OVERRIDE` right
after it when a safety check stepped aside, so the runs list reads at a glance; who decided and why
follow. The note the run was triggered with is kept below. Pure: no Airflow, no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drflow.units import human_duration


def plan_run_note(record: Mapping[str, Any]) -> str:
    outcome = str(record.get("outcome") or "unknown")
    override = record.get("override") or {}
    used = list(override.get("used") or [])
    head = outcome.upper() + (" with OVERRIDE" if used else "")
    lines = [f"{head}: {_what_happened(record, outcome)}"]
    if used:
        steps = ", ".join(f"`{u['step']}` ({u['skipped']})" for u in used)
        lines.append(f"- override set by {override.get('set_by') or 'unknown'}: {steps} went on without proof")
    elif override.get("requested"):
        lines.append(f"- override requested by {override.get('set_by') or 'unknown'}, not used")
    approvals = [a for a in record.get("approvals") or [] if a.get("decision") in ("approved", "refused")]
    lines += [f"- `{a['task_id']}` {a['decision']} by {a['by']}" + _quoted(a.get("comment")) for a in approvals]
    trigger = (record.get("triggered_by") or {}).get("user") or "unknown"
    lines.append(f"- triggered by {trigger}: {record.get('reason')}")
    if record.get("run_note"):
        lines += ["", f"Note at trigger: {record['run_note']}"]
    return "\n".join(lines)


def _what_happened(record: Mapping[str, Any], outcome: str) -> str:
    recovery = record.get("recovery") or {}
    if outcome == "refused":
        refusal = next((a for a in record.get("approvals") or [] if a.get("decision") == "refused"), None)
        if refusal is None:
            return "nobody answered the disaster declaration in time; no step ran, nothing changed"
        why = _quoted(refusal.get("comment")) or " (no reason given)"
        return f"declaration refused by {refusal['by']}{why}; no step ran, nothing changed"
    if outcome == "recovered":
        measured, rto_s = recovery.get("measured_s"), recovery.get("rto_s")
        if measured is None or rto_s is None:
            return "every step done"
        mark = "✔" if recovery.get("rto_met") else "✘ over the RTO"
        return f"in {human_duration(measured)} against an RTO of {human_duration(rto_s)} {mark}"
    problems = list(record.get("problems") or [])
    return "; ".join(problems[:2]) or outcome


def _quoted(comment: Any) -> str:
    return f" (“{comment}”)" if comment else ""
