"""Configuration after each change (issue 9 item 2), on a real Airflow with a real triggerer.

The config backup DAG is scheduled on an asset whose AssetWatcher runs drflow's ConfigChangeTrigger
in the triggerer. A change of the config directory must start a backup run within two polling
intervals and store a new version; a config left unchanged must start no run at all.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
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
"""


class Watched:
    def __init__(self, stack: AirflowStack, config: Path, store: Path) -> None:
        self.stack, self.config, self.store = stack, config, store
        self.client: AirflowClient = stack.client("alice")

    def runs(self) -> list[dict[str, Any]]:
        found = self.client.get(f"/api/v2/dags/{DAG_ID}/dagRuns", order_by="run_after", limit=100)
        return list(found["dag_runs"])

    def wait_runs(self, count: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if len(runs) >= count:
                return runs
            self.stack.check_alive()
            time.sleep(0.25)
        raise AssertionError(
            f"{len(self.runs())} runs of {DAG_ID} after {timeout}s, expected {count}\n"
            f"{self.stack.log_tail('triggerer')}\n{self.stack.log_tail('scheduler')}"
        )

    def versions(self) -> list[str]:
        target = {"name": "local-store", "type": "local", "path": str(self.store)}
        return [v.sha256 for v in component_versions("watch", "gateway", target).versions()]


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
        with airflow_stack(specs) as stack:
            client = stack.client("alice")
            client.wait_for_dag(DAG_ID)
            client.unpause(DAG_ID)
            yield Watched(stack, config, store)


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
