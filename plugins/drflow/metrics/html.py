"""Metrics snapshots as one HTML page: `drflow report --html` and the DR dashboard (with live Airflow facts).

Everything the spec or the store says is escaped; charts are inline SVG; nothing is loaded from elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote

from drflow.metrics.charts import chart
from drflow.metrics.series import Series
from drflow.metrics.text import duration, proof_text, rpo_text, summary_line, when

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#1c2833;font-size:13px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 4px}.meta{color:#566573;margin:0 0 8px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e5e8e8;padding:5px 6px;
vertical-align:top;text-align:left}th{background:#f4f6f6;font-weight:600}ul{margin:0;padding-left:16px}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;color:#fff;font-weight:700;font-size:12px}
.badge.green{background:#1e8449}.badge.amber{background:#b9770e}.badge.red{background:#c0392b}
tr.component.red td.status{background:#fadbd8}tr.component.amber td.status{background:#fdebd0}
tr.component.green td.status{background:#d4efdf}li.ok{color:#1e8449}li.late,li.missing{color:#b9770e}
li.unreadable{color:#c0392b}.fail{color:#c0392b;font-weight:600}.pass{color:#1e8449}.nodata{color:#839192}
tr.reasons td{border-bottom:2px solid #d5d8dc;color:#4d5656;padding-top:0}code{font-size:12px}
"""
# Inside Airflow's UI the page is an iframe: open Airflow links in the UI itself, not inside the frame.
SCRIPT = """
document.addEventListener('click', function (e) {
  var a = e.target.closest('a[data-airflow]');
  if (!a || window.top === window) return;
  try {
    window.top.history.pushState(null, '', a.getAttribute('href'));
    window.top.dispatchEvent(new PopStateEvent('popstate', {state: null}));
    e.preventDefault();
  } catch (err) { /* not the same origin: follow the link in the frame */ }
});
"""


@dataclass(frozen=True)
class RunLink:
    dag_id: str
    run_id: str | None
    text: str


@dataclass
class Live:
    """What Airflow's REST API says now, per component, and where Airflow's UI is (for links)."""

    ui_root: str
    open_runs: dict[str, list[RunLink]] = field(default_factory=dict)
    approvals: dict[str, list[RunLink]] = field(default_factory=dict)
    failed_drills: dict[str, list[RunLink]] = field(default_factory=dict)
    """The newest run of a drill DAG failed: it may have written no report (a restore that broke)."""
    error: str | None = None

    def url(self, dag_id: str, run_id: str | None = None) -> str:
        base = f"{self.ui_root.rstrip('/')}/dags/{quote(dag_id, safe='')}"
        return f"{base}/runs/{quote(run_id, safe='')}" if run_id else f"{base}/runs"


def _link(live: Live | None, dag_id: str | None, run_id: str | None, text: str) -> str:
    if live is None or not dag_id:
        return escape(text)
    return f'<a data-airflow href="{escape(live.url(dag_id, run_id))}">{escape(text)}</a>'


def _backups(rows: Sequence[Mapping[str, Any]], live: Live | None) -> str:
    items = []
    for row in rows:
        age = duration(row["age_s"]) if row["age_s"] is not None else row["state"]
        text = f"{row['source']} @ {row['target']}: {age}" + (" (late)" if row["state"] == "late" else "")
        items.append(f'<li class="{escape(row["state"])}">{_link(live, row["dag_id"], None, text)}</li>')
    return f"<ul>{''.join(items)}</ul>" if items else '<span class="nodata">no backup policy</span>'


def _proof(component: Mapping[str, Any], live: Live | None) -> str:
    proof = component["last_proof"]
    if not proof:
        return '<span class="nodata">never drilled</span>'
    css = "pass" if proof["passed"] else "fail"
    head = f'<span class="{css}">{_link(live, proof.get("dag_id"), proof.get("run_id"), proof_text(proof))}</span>'
    measured = f"RTO {duration(proof.get('rto_s'))} · RPO {duration(proof.get('rpo_s'))}"
    return f"{head}<br>{measured}"  # what failed is in the component's reasons


def _rpo(component: Mapping[str, Any], live: Live | None) -> str:
    rpo = component["rpo_compliance"]
    if not rpo:
        return '<span class="nodata">no report</span>'
    css = "pass" if rpo["compliant"] and not rpo["stale"] else "fail"
    checked = f"<br><small>checked {escape(when(rpo['checked_at']))}</small>"
    return f'<span class="{css}">{_link(live, rpo.get("dag_id"), None, rpo_text(rpo))}</span>{checked}'


def _live(component: str, live: Live | None) -> str:
    if live is None:
        return ""
    if live.error:
        return f'<td><span class="nodata">{escape(live.error)}</span></td>'
    runs = [f"<li>{_link(live, r.dag_id, r.run_id, r.text)}</li>" for r in live.open_runs.get(component, [])]
    asks = [f"<li>{_link(live, r.dag_id, r.run_id, r.text)}</li>" for r in live.approvals.get(component, [])]
    body = (f"<b>running</b><ul>{''.join(runs)}</ul>" if runs else "") + (
        f"<b>awaiting approval</b><ul>{''.join(asks)}</ul>" if asks else ""
    )
    return f"<td>{body or '<span class=nodata>none open</span>'}</td>"


def _row(component: Mapping[str, Any], series: Series | None, live: Live | None) -> str:
    name, status = component["component"], component["status"]
    objectives = component["objectives"]
    charts = ""
    if series is not None:
        charts = (
            f"<td>{chart(series.restore, objectives['rto_s'], label='measured recovery time')}</td>"
            f"<td>{chart(series.backup_age, objectives['rpo_s'], label='newest backup age', line=True)}</td>"
        )
    row = (
        f'<tr class="component {status}" data-component="{escape(name)}" data-status="{status}">'
        f'<td class="status"><span class="badge {status}">{status.upper()}</span></td>'
        f"<td><b>{escape(component['title'])}</b><br><code>{escape(name)}</code><br>{escape(component['criticality'])}</td>"
        f"<td>RTO {duration(objectives['rto_s'])}<br>RPO {duration(objectives['rpo_s'])}</td>"
        f"<td>{_backups(component['backups'], live)}</td><td>{_proof(component, live)}</td>"
        f"<td>{_rpo(component, live)}</td>{_live(name, live)}{charts}</tr>"
    )
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in component["reasons"])
    columns = 6 + (1 if live else 0) + (2 if series is not None else 0)
    if reasons:
        row += (
            f'<tr class="reasons" data-component="{escape(name)}"><td></td>'
            f'<td colspan="{columns - 1}"><ul>{reasons}</ul></td></tr>'
        )
    return row


def spec_section(
    snapshot: Mapping[str, Any], series: Mapping[str, Series] | None = None, live: Live | None = None
) -> str:
    status = snapshot["status"]
    head = "<th>status</th><th>component</th><th>objectives</th><th>newest backups</th>"
    head += "<th>last drill or exercise</th><th>RPO now</th>"
    head += "<th>recovery runs</th>" if live else ""
    head += "<th>recovery time</th><th>backup age</th>" if series is not None else ""
    rows = "".join(_row(c, series.get(c["component"]) if series else None, live) for c in snapshot["components"])
    return (
        f'<section class="spec" data-spec="{escape(snapshot["spec"])}">'
        f'<h2><span class="badge {status}">{status.upper()}</span> {escape(snapshot["spec"])}</h2>'
        f'<p class="meta">{escape(summary_line(snapshot))} · computed {escape(when(snapshot["computed_at"]))}</p>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></section>"
    )


def page(title: str, sections: Sequence[str], *, note: str = "", script: bool = False) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f'<p class="meta">{escape(note)} Green: proven and within the objectives; amber: not proven or not known now; '
        f"red: a failed drill or recovery, an objective missed, or no backup.</p>{''.join(sections)}"
        + (f"<script>{SCRIPT}</script>" if script else "")
        + "</body></html>"
    )


def report_html(snapshot: Mapping[str, Any], series: Mapping[str, Series] | None = None) -> str:
    """`drflow report --html`: one spec's page."""
    return page(f"DR metrics of {snapshot['spec']}", [spec_section(snapshot, series)])
