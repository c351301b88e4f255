"""`drflow report`: a spec's DR metrics, read from the store (text, JSON or one HTML page)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from drflow.cli.common import err, fail, load_one, out


def show_report(spec_path: Path, as_json: bool, as_html: bool, period: str, output: Path | None) -> int:
    """Print (or write) the metrics; exit 1 when a component is red, or when no storage target could be read
    (nothing is known then), so scripts and CI can alert."""
    from drflow.metrics.html import report_html
    from drflow.metrics.series import collect
    from drflow.metrics.text import report_text
    from drflow.plan.metrics import metrics_run
    from drflow.units import parse_positive_duration

    if as_json and as_html:
        raise fail("give one of --json and --html, not both")
    try:
        window: timedelta = parse_positive_duration(period)
    except ValueError as exc:
        raise fail(f"--period {period}: {exc}; write it as a duration, e.g. 30d or 12h") from None
    spec = load_one(spec_path).spec
    snapshot, series = collect(metrics_run(spec, period=window), datetime.now(UTC))
    if as_json:
        text = json.dumps(snapshot, indent=2, default=str) + "\n"
    elif as_html:
        text = report_html(snapshot, series)
    else:
        text = report_text(snapshot)
    if output is None:
        out.print(text, markup=False, highlight=False, soft_wrap=True, end="")
    else:
        output.write_text(text)
        out.print(f"wrote the DR metrics of {spec.metadata.name} to {output}", markup=False, highlight=False)
    components = cast(list[dict[str, Any]], snapshot["components"])
    unreadable = {t: why for c in components for t, why in (c.get("unreadable_targets") or {}).items()}
    for target, why in sorted(unreadable.items()):
        err.print(
            f"storage target {target} could not be read ({why}); its evidence is missing from this report",
            markup=False,
            highlight=False,
        )
    used = {t for c in spec.components for p in c.backup_policies for t in p.targets}
    used |= {t for c in spec.components if c.config for t in c.config.targets}
    if unreadable and set(unreadable) >= used:
        raise fail(
            "no storage target could be read, so nothing in this report is known; fix their access and run again"
        )
    return 1 if snapshot["status"] == "red" else 0
