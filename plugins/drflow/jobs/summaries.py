"""Markdown summaries people read: a drill's verdict and an RPO-compliance run, in the run's note and the log.

Pure: from the report dicts the jobs already produce. The first word is the verdict (`PASSED`, `FAILED`,
`COMPLIANT`, `OUT OF COMPLIANCE`), so a list of runs reads at a glance; durations are written as in a spec,
a measured one in the unit of the objective it is held against (`12.3m` against an RPO of `5m`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drflow.units import duration_against, human_duration

MARK = {True: "✔", False: "✘"}


def drill_summary(report: Mapping[str, Any]) -> str:
    """A restore drill of a database or of files (the report of `jobs.drill.drill_verdict`)."""
    rto_s, rpo_s = report["rto_s"], report["rpo_s"]
    verdict = "PASSED" if report["passed"] else "FAILED"
    checks = list(report.get("checks") or [])
    passed = [c for c in checks if c.get("passed")]
    lines = [
        f"{verdict}: drill `{report['drill']}` of `{report['component']}` restored `{report.get('backup_id')}`",
        "",
        f"- restore {duration_against(report['restore_s'], rto_s)} against an RTO of {human_duration(rto_s)} "
        f"{MARK[bool(report['rto_met'])]}",
        f"- backup age {duration_against(report['backup_age_s'], rpo_s)} against an RPO of {human_duration(rpo_s)} "
        f"{MARK[bool(report['rpo_met'])]}" + ("" if report["rpo_met"] else " (warned, not failed)"),
        f"- checks {len(passed)}/{len(checks)} passed"
        + "".join(f"; ✘ {c['name']}" for c in checks if not c.get("passed")),
    ]
    lines += [f"- **problem**: {problem}" for problem in report.get("problems") or []]
    return "\n".join(lines)


def snapshot_drill_summary(component: str, result: Mapping[str, Any]) -> str:
    """A snapshot drill: the volume or instance created from the copy, its wait, against the RTO."""
    rto_s = result["rto_s"]
    verdict = "PASSED" if result["rto_met"] else "FAILED"
    created = [r.get("resource_id") for r in result.get("restored") or [] if isinstance(r, Mapping)]
    restored = ", ".join(f"`{r}`" for r in created if r) or "the restored resource"
    return "\n".join(
        [
            f"{verdict}: snapshot drill of `{component}` from backup `{result.get('backup_id')}`",
            "",
            f"- {restored} created in {result.get('region')}, available in "
            f"{human_duration(result.get('restore_s') or 0)}, then deleted",
            f"- {duration_against(result['total_s'], rto_s)} in all against an RTO of {human_duration(rto_s)} "
            f"{MARK[bool(result['rto_met'])]}",
        ]
    )


def config_drill_summary(component: str, result: Mapping[str, Any]) -> str:
    """A config drill: the newest version restored from a target, its hash, the spec's validation command."""
    verdict = "PASSED" if result["passed"] else "FAILED"
    lines = [
        f"{verdict}: config drill of `{component}` restored version `{result['version_id']}` from "
        f"`{result.get('target')}`",
        "",
        f"- {result.get('files')} files, hash {'matches ✔' if result['hash_matches'] else 'differs ✘'}",
    ]
    if result.get("validation") is not None:
        lines.append("- validation command passed ✔")
    lines += [f"- skipped: {skipped}" for skipped in result.get("skipped_targets") or []]
    return "\n".join(lines)


def achievable_text(result: Mapping[str, Any]) -> str:
    """The achievable RPO in the unit of the objective, and what gives it; or what is missing when nothing does."""
    best = result.get("achievable_rpo_s")
    if best is None:
        return "no recovery point at all (no reachable streaming replica, no backup, no archived WAL)"
    return f"achievable RPO {duration_against(best, result['rpo_s'])} (from {result.get('best_source')})"


def compliance_line(result: Mapping[str, Any]) -> str:
    """One component, as logged and as listed in the note."""
    state = "compliant" if result["compliant"] else "OUT OF COMPLIANCE"
    return (
        f"{result['component']}: {state}: {achievable_text(result)} against an RPO of {human_duration(result['rpo_s'])}"
    )


def rpo_summary(report: Mapping[str, Any]) -> str:
    """The whole run: the verdict first, each component with its mark; the first problem of a failing one."""
    results = list(report["components"])
    failing = [r for r in results if not r["compliant"]]
    head = (
        f"OUT OF COMPLIANCE: {len(failing)} of {len(results)} components"
        if failing
        else f"COMPLIANT: all {len(results)} components"
    )
    lines = [f"{head} (RPO compliance of `{report['spec']}`)", ""]
    for result in sorted(results, key=lambda r: r["compliant"]):
        line = f"- {MARK[bool(result['compliant'])]} {compliance_line(result)}"
        if not result["compliant"] and result.get("problems"):
            line += f" — {_short(result['problems'][0])}"
        lines.append(line)
    return "\n".join(lines)


def _short(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
