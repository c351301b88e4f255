"""Configuration after each change (issue 9 item 2), on a real Airflow with a real triggerer.

The config backup DAG is scheduled on an asset whose AssetWatcher runs drflow's ConfigChangeTrigger
in the triggerer. A change of the config directory must start a backup run within two polling
intervals and store a new version; a config left unchanged must start no run at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from drflow.jobs.config import component_versions
from tests.e2e.airflow_stack import AirflowClient, AirflowStack, airflow_stack

pytestmark = pytest.mark.slow

DAG_ID = "dr.watch.gateway.backup.config"
POLL_S = 5

SPEC = """\
version: 1
metadata: {{name: watch, owner: test-team}}
regions: [{{name: us-east-1, role: primary}}]
storage:
  - {{name: local-store, type: local, path: {store}, region: us-east-1}}
reports: {{rpo_compliance: {{enabled: false}}}}
components:
  - name: gateway
    criticality: medium
    rto: 1h
    rpo: 1h
    config:
      type: directory
      path: {config}
      poll_interval: {poll}s
      targets: [local-store]
      retention: {{days: 30}}
  - name: catalog
    criticality: low
    rto: 1h
    rpo: 1h
    config:
      type: http
      conn_id: watch_catalog_admin
      endpoint: /admin/config
      poll_interval: {poll}s
      targets: [local-store]
      retention: {{days: 30}}
"""
HTTP_DAG_ID = "dr.watch.catalog.backup.config"


class _Admin(BaseHTTPRequestHandler):
    """The catalog's admin API: GET /admin/config returns the running config."""

    body = b'{"apis": ["users"]}'

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        found = self.path == "/admin/config"
        payload = self.body if found else b"not found"
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


class Watched:
    def __init__(self, stack: AirflowStack, config: Path, store: Path) -> None:
        self.stack, self.config, self.store = stack, config, store
        self.client: AirflowClient = stack.client("alice")

    def runs(self, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        found = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns", order_by="run_after", limit=100)
        return list(found["dag_runs"])

    def wait_runs(self, count: int, timeout: float, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs(dag_id)
            if len(runs) >= count:
                return runs
            self.stack.check_alive()
            time.sleep(0.25)
        raise AssertionError(
            f"{len(self.runs(dag_id))} runs of {dag_id} after {timeout}s, expected {count}\n"
            f"{self.stack.log_tail('triggerer')}\n{self.stack.log_tail('scheduler')}"
        )

    def versions(self, component: str = "gateway") -> list[str]:
        target = {"name": "local-store", "type": "local", "path": str(self.store)}
        return [v.sha256 for v in component_versions("watch", component, target).versions()]


@pytest.fixture(scope="module")
def watched() -> Iterator[Watched]:
    with tempfile.TemporaryDirectory(prefix="drflow-e2e-config-") as tmp:
        root = Path(tmp)
        specs, config, store = root / "specs", root / "routes", root / "store"
        specs.mkdir()
        (config / "v1").mkdir(parents=True)
        (config / "v1" / "users.yaml").write_text("path: /v1/users\nupstream: users:8080\n")
        (config / "gateway.yaml").write_text("listen: 8443\n")
        (specs / "watch.yaml").write_text(SPEC.format(store=store, config=config, poll=POLL_S))
        admin = ThreadingHTTPServer(("127.0.0.1", 0), _Admin)
        threading.Thread(target=admin.serve_forever, daemon=True).start()
        conn = {"conn_type": "http", "host": "127.0.0.1", "port": admin.server_address[1]}
        try:
            with airflow_stack(specs, {"AIRFLOW_CONN_WATCH_CATALOG_ADMIN": json.dumps(conn)}) as stack:
                client = stack.client("alice")
                for dag_id in (DAG_ID, HTTP_DAG_ID):  # config DAGs start active: nobody unpauses them
                    assert client.wait_for_dag(dag_id)["is_paused"] is False
                yield Watched(stack, config, store)
        finally:
            admin.shutdown()


def test_first_version_then_nothing_while_unchanged_then_a_backup_per_change(watched: Watched) -> None:
    # The config was never seen: the first poll fires and the first version is stored.
    first = watched.wait_runs(1, timeout=90)
    watched.client.wait_run(DAG_ID, first[0]["dag_run_id"])
    assert first[0]["run_type"] == "asset_triggered"
    assert len(watched.versions()) == 1

    # Unchanged for four polling intervals: no run.
    time.sleep(4 * POLL_S)
    assert len(watched.runs()) == 1

    # A change (a new route) starts a backup within two polling intervals.
    (watched.config / "v1" / "orders.yaml").write_text("path: /v1/orders\nupstream: orders:8080\n")
    changed = time.monotonic()
    runs = watched.wait_runs(2, timeout=2 * POLL_S)
    took = time.monotonic() - changed
    print(f"\nchange → backup run created in {took:.1f}s (poll interval {POLL_S}s)")
    final = watched.client.wait_run(DAG_ID, runs[-1]["dag_run_id"])
    assert final["state"] == "success"
    versions = watched.versions()
    assert len(versions) == 2 and versions[0] != versions[1]

    # And nothing again while it stays so.
    time.sleep(3 * POLL_S)
    assert len(watched.runs()) == 2


def test_an_http_source_is_watched_through_its_airflow_connection(watched: Watched) -> None:
    first = watched.wait_runs(1, timeout=60, dag_id=HTTP_DAG_ID)
    watched.client.wait_run(HTTP_DAG_ID, first[0]["dag_run_id"])
    assert len(watched.versions("catalog")) == 1
    _Admin.body = b'{"apis": ["users", "orders"]}'
    runs = watched.wait_runs(2, timeout=2 * POLL_S, dag_id=HTTP_DAG_ID)
    assert watched.client.wait_run(HTTP_DAG_ID, runs[-1]["dag_run_id"])["state"] == "success"
    assert len(watched.versions("catalog")) == 2


def restart_triggerer(stack: AirflowStack) -> None:
    """Stop the triggerer (SIGTERM to its group, as the stack does) and start a new one."""
    old = stack.processes["triggerer"]
    os.killpg(old.pid, signal.SIGTERM)
    old.wait(timeout=60)
    with stack.log("triggerer").open("ab") as log:
        stack.processes["triggerer"] = subprocess.Popen(
            [str(Path(sys.executable).with_name("airflow")), "triggerer"],
            env=stack.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_a_restarted_triggerer_does_not_fire_again_for_content_already_seen(watched: Watched) -> None:
    before = {dag_id: len(watched.runs(dag_id)) for dag_id in (DAG_ID, HTTP_DAG_ID)}
    restart_triggerer(watched.stack)
    log = watched.stack.log("triggerer")
    deadline = time.monotonic() + 90
    while log.read_text(errors="replace").count("trigger ID 1 starting") < 2:
        assert time.monotonic() < deadline, f"the new triggerer did not start the watcher\n{log.read_text()[-3000:]}"
        time.sleep(0.5)
    time.sleep(6 * POLL_S)  # several polls of the new triggerer (its first one comes ~15 s after start here)
    assert {dag_id: len(watched.runs(dag_id)) for dag_id in (DAG_ID, HTTP_DAG_ID)} == before
    # ... and it still sees a change.
    (watched.config / "v1" / "users.yaml").write_text("path: /v1/users\nupstream: users-v2:8080\n")
    watched.wait_runs(before[DAG_ID] + 1, timeout=2 * POLL_S + 5)
