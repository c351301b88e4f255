"""Post-incident reports from the recovery record and Airflow's REST API (captured from real Airflow 3.3.2 runs).

The API side is served over real HTTP from the captures (token, then only the GETs the live run answered),
so `drflow incident-report` goes through the same client, connection and gatherer as against an api-server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import pytest
from typer.testing import CliRunner

from drflow.audit.data_loss import data_loss
from drflow.audit.gather import gather_run
from drflow.audit.incident import incident_markdown, render_incident, slowest, timeline
from drflow.audit.record import build_record
from drflow.cli import app
from drflow.operators.record import RecoveryRecordOperator, keep_where
from tests.integration.test_record import CAPTURE_SPEC, STEPS_META, ReplayApi, _capture, record_params

RUN_APPROVED = "manual__2026-11-27T10:59:56.789588+00:00"
PROMOTE_RESULT = {
    "step": "promote",
    "overridden": False,
    "guards": {"overridden": False, "lag": {"lag_s": 2.5, "lag_bytes": 8192, "upper_bound": False}},
}


def _record(name: str, **extra: Any) -> dict[str, Any]:
    capture = _capture(name)
    facts = gather_run(ReplayApi(capture["calls"]), capture["dag_id"], capture["run_id"])
    now = datetime.fromisoformat(facts["dag_run"]["end_date"].replace("Z", "+00:00"))
    return build_record(capture["plan"], facts, steps_meta=STEPS_META, now=now, **extra)


def test_the_report_tells_the_whole_run_in_time_order_with_the_objectives() -> None:
    record = _record("approved", step_results={"promote": PROMOTE_RESULT})
    text = incident_markdown(record)

    assert "- **Triggered by**: alice via rest_api" in text and "us-east-1 is down (INC-42)" in text
    assert "| RTO (recovery time) |" in text and "| 30m | yes |" in text
    assert "| RPO (data lost) | 2.5s | 5m | yes |" in text
    assert "Data lost at `promote`: 2.5s (promotion: replica lag measured by the lag gate)." in text
    events = [what for _, what in timeline(record)]
    assert events[0].startswith("triggered by alice")
    assert events.index("`declare` asked bob") < next(i for i, e in enumerate(events) if "approved by bob" in e)
    assert "`promote` try 1 ended failed" in " ".join(events) and "`promote` try 2 ended success" in " ".join(events)
    times = [when for when, _ in timeline(record)]
    assert times == sorted(times, key=lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")))
    assert "- `declare`: approved by bob (assigned bob)" in text and "waited" in text
    [top, *_] = slowest(record)
    longest = max(record["steps"], key=lambda s: s["duration_s"] or 0)
    assert top["task_id"] == longest["task_id"]
    assert "(2 tries)" in text, "a retried step says so among the slowest"


def test_a_refused_run_and_a_failed_run_say_so() -> None:
    refused = incident_markdown(_record("refused"))
    assert "- **Outcome**: refused" in refused and "refused by bob" in refused
    assert "| RTO (recovery time) | — | 30m | not measured |" in refused
    failed = incident_markdown(_record("failed"))
    assert "- **Outcome**: failed" in failed and "step promote failed" in failed


def test_data_loss_of_a_restore_counts_from_the_restored_point_to_the_incident() -> None:
    restore = {"restored": {"port": 1}, "backup_finished_at": "2026-11-27T10:00:00+00:00", "point_in_time": None}
    loss = data_loss({"rpo_s": 300}, {"incident_started_at": "2026-11-27T10:10:00+00:00"}, {}, {"restore": restore})
    assert loss["measured_s"] == 600 and loss["rpo_met"] is False
    pitr = {**restore, "point_in_time": "2026-11-27T10:09:00+00:00"}
    loss = data_loss({"rpo_s": 300}, {"incident_started_at": "2026-11-27T10:10:00+00:00"}, {}, {"restore": pitr})
    assert loss["measured_s"] == 60 and loss["rpo_met"] is True
    assert data_loss({"rpo_s": 300}, {}, {}, {"notify": {"sent": []}})["measured_s"] is None


def test_html_is_one_page_and_escapes_what_people_typed() -> None:
    record = _record("approved")
    record["reason"] = "<img src=x onerror=alert(1)>"
    html = render_incident(record, "html")
    assert html.startswith("<!doctype html>") and "<h2>Timeline (UTC)</h2>" in html
    assert "<img" not in html and "&lt;img" in html


class _ReplayHandler(BaseHTTPRequestHandler):
    answers: dict[str, Any] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # /auth/token
        self._send(201, {"access_token": "t"})

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        params = {k: int(v) if v.isdigit() else v for k, v in parse_qsl(query)}
        key = path + "?" + json.dumps(params, sort_keys=True)
        if self.headers.get("Authorization") != "Bearer t":
            self._send(401, {"detail": "no token"})
        elif key in self.answers:
            self._send(200, self.answers[key])
        else:
            self._send(404, {"detail": f"not captured: {key}"})

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def api_server() -> Iterator[str]:
    capture = _capture("approved")
    _ReplayHandler.answers = {p + "?" + json.dumps(q or {}, sort_keys=True): r for p, q, r in _calls(capture)}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReplayHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _calls(capture: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    for call in capture["calls"]:
        yield call["path"], call["params"], call["response"]


def _spec(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    spec = tmp_path / "capture.yaml"
    spec.write_text(CAPTURE_SPEC.format(store=store, defaults=""))
    return spec


def test_the_command_reads_the_stored_record_when_airflow_is_not_reachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path)
    operator = RecoveryRecordOperator(task_id="record", **record_params(tmp_path / "store"))
    dag_run = SimpleNamespace(run_id=RUN_APPROVED, start_date=datetime(2026, 11, 27, 10, 59, 57, tzinfo=UTC))
    operator._store(_record("approved", step_results={"promote": PROMOTE_RESULT}), dag_run)
    monkeypatch.delenv("AIRFLOW_CONN_DRFLOW_AIRFLOW_API", raising=False)

    result = CliRunner().invoke(app, ["incident-report", "--run", RUN_APPROVED, "--spec", str(spec)])
    assert result.exit_code == 0, result.output
    assert "# Post-incident report: `region-failover` run `manual__2026-11-27T10:59:56.789588+00:00`" in result.output
    assert "| RPO (data lost) | 2.5s | 5m | yes |" in result.output
    assert "Sources: the recovery record at storage target l (capture/user-database/reports/recovery/)" in result.output
    assert "note: Airflow's API was not read: Airflow connection 'drflow_airflow_api' is not defined" in result.output

    missing = CliRunner().invoke(app, ["incident-report", "--run", "manual__nope", "--spec", str(spec)])
    assert missing.exit_code == 1 and "no recovery record of run 'manual__nope'" in missing.output
    assert "AIRFLOW_CONN_DRFLOW_AIRFLOW_API" in missing.output


def test_the_command_rebuilds_the_timeline_from_airflows_api_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_server: str
) -> None:
    spec = _spec(tmp_path)
    monkeypatch.setenv(
        "AIRFLOW_CONN_DRFLOW_AIRFLOW_API",
        json.dumps({"conn_type": "http", "host": api_server, "login": "auditor", "password": "pw"}),
    )
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app,
        [
            "incident-report",
            "--run",
            RUN_APPROVED,
            "--spec",
            str(spec),
            "--plan",
            "region-failover",
            "--format",
            "html",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "triggered by alice via rest_api" in html and "approved by bob" in html
    assert "Airflow&#x27;s REST API, read now" in html or "Airflow's REST API, read now" in html


def test_the_record_task_stores_the_report_beside_the_record(tmp_path: Path) -> None:
    operator = RecoveryRecordOperator(task_id="record", **record_params(tmp_path))
    dag_run = SimpleNamespace(run_id=RUN_APPROVED, start_date=datetime(2026, 11, 27, 10, 59, 57, tzinfo=UTC))
    record = _record("approved")
    keep_where(record, operator._store(record, dag_run))
    operator._incident_report(record, dag_run)
    key = record["incident_report_key"]
    assert key.startswith("capture/user-database/reports/incident/20261127T105957Z-region-failover-")
    stored = json.loads((tmp_path / key).read_text())
    where = f"{record['report_key']} (in l)"
    assert stored["run_id"] == RUN_APPROVED and stored["text"] == incident_markdown(
        record, sources=[f"the recovery record at {where}"]
    )
    assert record["incident_store_failures"] == {}


def test_the_command_loads_no_airflow(tmp_path: Path) -> None:
    from tests.integration.test_cli_without_airflow import _cli, _imported

    spec = _spec(tmp_path)
    result = _cli(["incident-report", "--run", "manual__nope", "--spec", str(spec)], {})
    assert result.returncode == 1 and "no recovery record of run 'manual__nope'" in result.stderr
    assert not {m for m in _imported(result.stderr) if m == "airflow" or m.startswith("airflow.")}
