"""`drflow compliance-report`: evidence for auditors, per component and period, from the store alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from drflow.cli.common import err, fail, load_one, out


def compliance_report(
    spec_path: Path, from_text: str | None, to_text: str | None, as_json: bool, as_html: bool, output: Path | None
) -> None:
    from drflow.audit.compliance_render import render_compliance
    from drflow.jobs.compliance import compliance_report as gather
    from drflow.jobs.compliance_period import parse_period

    if as_json and as_html:
        raise fail("give one of --json or --html (without either: Markdown)")
    spec = load_one(spec_path).spec
    now = datetime.now(UTC)
    try:
        period = parse_period(from_text, to_text, now)
    except ValueError as exc:
        raise fail(str(exc)) from None
    report = gather(spec, period, now, spec.exercise_schedules())
    if as_json:
        text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    else:
        text = render_compliance(report, "html" if as_html else "md")
    if output is None:
        out.print(text, markup=False, highlight=False, soft_wrap=True, end="")
    else:
        output.write_text(text)
        out.print(f"wrote the compliance report of {spec.metadata.name} to {output}", markup=False, highlight=False)
    unreadable = report["summary"]["unreadable_targets"]
    if unreadable:
        # Evidence with holes must not pass for complete: say which reads failed and why, once each.
        for problem in dict.fromkeys(p for c in report["components"] for p in c["problems"]):
            err.print(problem, markup=False, highlight=False)
        names = ", ".join(unreadable)
        raise fail(
            f"storage targets {names} could not be read, so the report lacks their evidence; "
            "fix their access and run again"
        )
