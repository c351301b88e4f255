"""A metrics snapshot as Markdown-ish text: `drflow report` and the metrics task's log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drflow.units import human_duration
from drflow.when import stored_time


def duration(value: Any) -> str:
    return human_duration(float(value)) if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def ratio(figure: Mapping[str, Any] | None, good: str, total: str) -> str:
    if not figure or figure.get("ratio") is None:
        return "none yet"
    return f"{figure[good]}/{figure[total]} ({figure['ratio']:.0%})"


def when(value: Any) -> str:
    at = stored_time(value)
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "—"


def measured(objective: Any, value: Any, met: Any) -> str:
    mark = {True: " ✔", False: " ✘"}.get(met, "")
    return f"{duration(objective)} / {duration(value)}{mark}"


def proof_text(proof: Mapping[str, Any] | None) -> str:
    if not proof:
        return "never"
    verdict = "passed" if proof["passed"] else "FAILED"
    return f"{proof['kind']} {proof['name']} {verdict} {when(proof['at'])}"


def rpo_text(rpo: Mapping[str, Any] | None) -> str:
    if not rpo:
        return "no report"
    verdict = "compliant" if rpo["compliant"] else "OUT"
    return f"{verdict} ({duration(rpo.get('achievable_rpo_s'))}){' stale' if rpo['stale'] else ''}"


def backups_text(rows: list[Mapping[str, Any]]) -> str:
    parts = []
    for row in rows:
        age = duration(row["age_s"]) if row["age_s"] is not None else row["state"]
        late = " LATE" if row["state"] == "late" else ""
        parts.append(f"{row['source']}@{row['target']} {age}{late}")
    return ", ".join(parts) or "—"


def summary_line(snapshot: Mapping[str, Any]) -> str:
    return (
        f"recovery success {ratio(snapshot['recovery'], 'succeeded', 'attempts')} · validation "
        f"{ratio(snapshot['validation'], 'passed', 'checks')} · exercises "
        f"{ratio(snapshot['exercise_completion'], 'done', 'scheduled')} · MTTR {duration(snapshot['mttr_s'])} "
        f"({snapshot['recoveries']} real recoveries)"
    )


def report_text(snapshot: Mapping[str, Any]) -> str:
    lines = [
        f"# DR metrics of {snapshot['spec']}: {snapshot['status'].upper()}",
        f"computed {when(snapshot['computed_at'])}; rates over the last {duration(snapshot['period_s'])}",
        summary_line(snapshot),
        "",
        "| component | criticality | RTO objective / actual | RPO objective / actual | last drill or exercise "
        "| RPO now | newest backups | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in snapshot["components"]:
        actual, objectives = c["actual"], c["objectives"]
        lines.append(
            f"| {c['title']} ({c['component']}) | {c['criticality']} "
            f"| {measured(objectives['rto_s'], actual['rto_s'], actual['rto_met'])} "
            f"| {measured(objectives['rpo_s'], actual['rpo_s'], actual['rpo_met'])} "
            f"| {proof_text(c['last_proof'])} | {rpo_text(c['rpo_compliance'])} | {backups_text(c['backups'])} "
            f"| {c['status'].upper()} |"
        )
    for c in snapshot["components"]:
        lines += [
            "",
            f"## {c['title']}: {c['status'].upper()}",
            f"recovery {ratio(c['recovery'], 'succeeded', 'attempts')} · validation "
            f"{ratio(c['validation'], 'passed', 'checks')} · exercises "
            f"{ratio(c['exercise_completion'], 'done', 'scheduled')} · MTTR {duration(c['mttr_s'])}",
            *[f"- {reason}" for reason in c["reasons"]],
        ]
    return "\n".join(lines) + "\n"
