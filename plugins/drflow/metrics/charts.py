"""Small inline SVG charts (no script, no CDN): measured values over time against an objective line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from drflow.units import human_duration

WIDTH, HEIGHT, PAD = 220, 64, 4
COLORS = {True: "#1e8449", False: "#c0392b", None: "#2e86c1"}


def chart(
    points: Sequence[tuple[datetime, float, bool | None]],
    objective: float,
    *,
    label: str,
    line: bool = False,
) -> str:
    """``points`` (time, seconds, passed) as dots (or a line), the objective dashed; empty: a note saying so."""
    if not points:
        return f'<span class="nodata">{escape(label)}: no data yet</span>'
    top = max(objective * 1.25, max(value for _, value, _ in points)) or 1.0
    first, last = points[0][0], points[-1][0]
    span = (last - first).total_seconds() or 1.0

    def x(at: datetime) -> float:
        return PAD + (WIDTH - 2 * PAD) * ((at - first).total_seconds() / span if len(points) > 1 else 0.5)

    def y(value: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value / top)

    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(label)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}: objective {escape(human_duration(objective))}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fbfcfc" stroke="#d5d8dc"/>',
        f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(objective):.1f}" y2="{y(objective):.1f}" stroke="#c0392b" '
        'stroke-dasharray="4 3" stroke-width="1"/>',
    ]
    if line and len(points) > 1:
        path = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#2e86c1" stroke-width="1.5"/>')
    else:
        for at, value, passed in points:
            parts.append(
                f'<circle cx="{x(at):.1f}" cy="{y(value):.1f}" r="3" fill="{COLORS[passed]}">'
                f"<title>{at:%Y-%m-%d %H:%M} UTC: {escape(human_duration(value))}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)
