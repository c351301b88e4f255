"""The compliance report as people read it: Markdown (the terminal, a ticket) or one HTML page.

Pure: renders the JSON of :func:`drflow.jobs.compliance.compliance_report`, nothing else; every value from
the store is escaped in HTML.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from drflow.units import human_duration, human_size

FORMATS = ("md", "html")
Table = tuple[list[str], list[list[str]]]


def render_compliance(report: Mapping[str, Any], fmt: str = "md") -> str:
    blocks = _blocks(report)
    if fmt == "html":
        return _html(report, blocks)
    return "\n\n".join(_markdown(block) for block in blocks) + "\n"


def _blocks(report: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The report as a list of (kind, content): h1/h2/h3 headings, paragraphs and tables."""
    period = report["period"]
    blocks: list[tuple[str, Any]] = [
        ("h1", f"Compliance evidence of {report['spec']} (owner {report['owner']})"),
        (
            "p",
            f"Period {_when(period['from'])} to {_when(period['to'])}; generated {_when(report['generated_at'])} from "
            "the storage targets' "
            "catalogs and reports alone (backup manifests, drill, exercise and recovery records).",
        ),
        ("p", _summary(report["summary"])),
        ("h2", "Documentation currency"),
        ("table", _currency(report["currency"])),
    ]
    for component in report["components"]:
        blocks += _component(component)
    return blocks


def _when(value: Any) -> str:
    """An ISO time as people read it in a report: ``2026-12-01 04:59 UTC``."""
    if not value:
        return "-"
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if when.tzinfo else str(value)


def _summary(summary: Mapping[str, Any]) -> str:
    outside = summary["copies_outside_allowed_regions"]
    return (
        f"Backups: {summary['backups_done']} of {summary['backups_scheduled']} scheduled runs done, "
        f"{summary['backups_missed']} missed. Drills: {summary['drills_done']} of {summary['drills_scheduled']} done, "
        f"{summary['drills_missed']} missed, {summary['drills_failed']} failed. Exercises: "
        f"{summary['exercises_done']} of {summary['exercises_scheduled']} done, {summary['exercises_missed']} missed. "
        f"Incidents: {summary['incidents']}. Copies outside allowed regions: {', '.join(outside) or 'none'}. "
        f"Unreadable targets: {', '.join(summary.get('unreadable_targets') or []) or 'none'}."
    )


def _currency(currency: Mapping[str, Any]) -> Table:
    rows = [
        [
            d["document"],
            d["owner"],
            d["reviewed"] or "never",
            d["review_every"],
            d["due"] or "-",
            d["state"] + (" (the spec's review)" if d["inherited"] else ""),
        ]
        for d in currency["documents"]
    ]
    return ["document", "owner", "reviewed", "every", "due", "state"], rows


def _component(c: Mapping[str, Any]) -> list[tuple[str, Any]]:
    facts = [
        f"criticality {c['criticality']}",
        f"RTO {human_duration(c['rto_s'])}",
        f"RPO {human_duration(c['rpo_s'])}",
    ]
    if c["replication_mode"]:
        facts.append(f"replication {c['replication_mode']}")
    facts.append("allowed regions " + (", ".join(c["allowed_regions"]) if c["allowed_regions"] else "any"))
    blocks: list[tuple[str, Any]] = [("h2", f"{c['title']} ({c['component']})"), ("p", "; ".join(facts) + ".")]
    if c["backups"]:
        blocks += [("h3", "Backups taken against their schedules"), ("table", _backups(c["backups"]))]
    if c["copies"]:
        blocks += [("h3", "Copies: retention, lock and encryption per target"), ("table", _copies(c["copies"]))]
    if c["regions"]:
        blocks += [("h3", "Where the data lives"), ("table", _regions(c["regions"]))]
    if c["config"]:
        blocks += [("h3", "Configuration versions"), ("table", _config(c["config"]))]
    if c["drills"]:
        blocks += [("h3", "Drills"), ("table", _drills(c["drills"]))]
    if c["exercises"]:
        blocks += [("h3", "Exercises"), ("table", _exercises(c["exercises"]))]
    blocks += [("h3", "Incidents"), ("table", _incidents(c["incidents"])) if c["incidents"] else ("p", "None.")]
    if c["problems"]:
        blocks += [("h3", "Problems"), ("p", " ".join(c["problems"]))]
    return blocks


def _runs(runs: Mapping[str, Any] | None) -> list[str]:
    if not runs:
        return ["-", "-", "-", "-"]
    return [str(runs["scheduled"]), str(runs["done"]), str(runs["missed"]), str(runs["pending"])]


def _backups(backups: Sequence[Mapping[str, Any]]) -> Table:
    head = ["policy", "method", "schedule", "scheduled", "done", "missed", "pending", "beyond retention", "taken"]
    rows = [
        [b["policy"], f"{b['method']} {b['type']}", b["schedule"], *_runs(b["runs"])]
        + [str(b["runs"]["beyond_retention"]), str(b["taken"]), _retention(b)]
        for b in backups
    ]
    return [*head, "retention"], rows


def _retention(policy: Mapping[str, Any]) -> str:
    return f"{policy['retention']['days']}d {policy['retention']['policy']}"


def _counted(counts: Mapping[str, int]) -> str:
    return "; ".join(f"{key}: {value}" for key, value in counts.items()) or "-"


def _copies(copies: Sequence[Mapping[str, Any]]) -> Table:
    head = ["target", "region", "holds", "backups", "in period", "stored", "retention", "lock", "encryption"]
    rows = []
    for copy in copies:
        locks = "; ".join(
            f"{mode}: {entry['backups']}{_until(entry['retain_until'])}" for mode, entry in copy["locks"].items()
        )
        rows.append(
            [
                copy["target"],
                copy["region"] or "-",
                ", ".join(copy["roles"]) or "-",
                str(copy["backups"]),
                str(copy["in_period"]),
                human_size(copy["stored_bytes"]),
                _counted(copy["retention"]),
                locks or "-",
                _counted(copy["encryption"]),
            ]
        )
    return head, rows


def _until(span: Sequence[str]) -> str:
    if not span:
        return ""
    first, last = _when(span[0]), _when(span[-1])
    return f" (until {first})" if first == last else f" (until {first} to {last})"


def _regions(regions: Mapping[str, Mapping[str, Any]]) -> Table:
    head = ["region", "allowed", "targets", "backups", "snapshots", "config versions", "servers"]
    rows = [
        [
            region,
            "yes" if entry["allowed"] else "NO",
            ", ".join(entry["targets"]) or "-",
            str(entry["backups"]),
            str(entry["snapshots"]),
            str(entry["config_versions"]),
            ", ".join(entry["nodes"]) or "-",
        ]
        for region, entry in regions.items()
    ]
    return head, rows


def _config(config: Mapping[str, Any]) -> Table:
    rows = [
        [name, t["region"] or "-", str(t["versions"]), str(t["in_period"]), _when(t["newest"])]
        for name, t in config["targets"].items()
    ]
    return ["target", "region", "versions", "in period", "newest"], rows


def _drills(drills: Sequence[Mapping[str, Any]]) -> Table:
    head = ["drill", "schedule", "scheduled", "done", "missed", "pending", "passed", "failed", "last result"]
    rows = [[d["drill"], d["schedule"] or "-", *_runs(d["runs"])] for d in drills]
    for row, drill in zip(rows, drills, strict=True):
        row[3] = str(drill["done"])  # runs in the period, scheduled or not
        row += [str(drill["passed"]), str(drill["failed"]), _last_drill(drill["results"])]
    return head, rows


def _last_drill(results: Sequence[Mapping[str, Any]]) -> str:
    if not results:
        return "-"
    last = results[-1]
    took = f", restore {human_duration(float(last['restore_s']))}" if last.get("restore_s") is not None else ""
    rto = f" of RTO {human_duration(float(last['rto_s']))}" if last.get("rto_s") is not None and took else ""
    verdict = "passed" if last["passed"] else "FAILED: " + "; ".join(last["problems"])
    return f"{_when(last['started_at'])}: {verdict}{took}{rto}" + (
        f" (backup {last['backup_id']})" if last["backup_id"] else ""
    )


def _exercises(exercises: Sequence[Mapping[str, Any]]) -> Table:
    head = ["exercise", "schedule", "scheduled", "done", "missed", "pending", "passed", "results"]
    rows = []
    for e in exercises:
        row = [e["exercise"], (e["schedule"] or "-") + (" (paused)" if e["paused"] else ""), *_runs(e["runs"])]
        row[3] = str(e["done"])
        results = "; ".join(
            f"{_when(r['started_at'])} {r['type']} {r['outcome']}"
            + _measured(r["rto_s"], r["rto_objective_s"], "RTO")
            + _measured(r["rpo_s"], r["rpo_objective_s"], "RPO")
            + (f", gaps: {' / '.join(r['gaps'])}" if r["gaps"] else "")
            for r in e["results"]
        )
        rows.append([*row, str(e["passed"]), results or "-"])
    return head, rows


def _measured(value: Any, objective: Any, what: str) -> str:
    if value is None:
        return ""
    against = f" of {human_duration(float(objective))}" if objective is not None else ""
    return f", {what} {human_duration(float(value))}{against}"


def _incidents(incidents: Sequence[Mapping[str, Any]]) -> Table:
    head = ["started", "plan", "outcome", "triggered by", "recovery time (RTO)", "data lost (RPO)", "reason"]
    rows = [
        [
            _when(i["started_at"]),
            i["plan"] or "-",
            i["outcome"] or "-",
            i["triggered_by"] or "-",
            _against(i["rto_s"], i["rto_objective_s"], i["rto_met"]),
            _against(i["rpo_s"], i["rpo_objective_s"], i["rpo_met"]),
            i["reason"] or "-",
        ]
        for i in incidents
    ]
    return head, rows


def _against(value: Any, objective: Any, met: Any) -> str:
    if value is None:
        return "not measured"
    text = human_duration(float(value))
    if objective is not None:
        text += f" of {human_duration(float(objective))}"
    return text + (" met" if met else " MISSED" if met is False else "")


def _markdown(block: tuple[str, Any]) -> str:
    kind, content = block
    if kind in ("h1", "h2", "h3"):
        return "#" * int(kind[1]) + " " + content
    if kind == "p":
        return str(content)
    head, rows = content
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def _html(report: Mapping[str, Any], blocks: Sequence[tuple[str, Any]]) -> str:
    body = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            body.append(f"<{kind}>{html.escape(str(content))}</{kind}>")
            continue
        head, rows = content
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        lines = [f"<table><thead><tr>{cells}</tr></thead><tbody>"]
        missed = head.index("missed") if "missed" in head else None
        for row in rows:
            gap = missed is not None and row[missed] not in ("0", "-")
            bad = gap or any(v == "NO" or "MISSED" in v or "FAILED" in v for v in row)
            marked = ' class="bad"' if bad else ""
            lines.append(f"<tr{marked}>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>")
        body.append("\n".join(lines) + "</tbody></table>")
    title = html.escape(f"Compliance evidence of {report['spec']}")
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top;font-size:90%}"
        "th{background:#f3f3f3}tr.bad td{background:#fde2e2}"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
