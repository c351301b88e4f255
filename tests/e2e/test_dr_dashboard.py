"""The DR dashboard and the DR metrics end to end: the example spec in a real Airflow (api-server, scheduler,
dag-processor, triggerer), a real PostgreSQL primary, S3 in moto, a real UDP socket as the StatsD server, and
headless Chromium logged in through Airflow's login form.

User Database is backed up by its backup task, then its drill DAG runs against a secondary copy damaged on purpose:
the drill restores from the primary copy but fails, naming the copy to repair. The page must show the example
spec's components, that drill's component red (amber before it), and link to the drill run; the metrics DAG
must send its gauges to StatsD and keep its snapshot in the store.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
import requests

from drflow.devtools.sandbox.demo_data import seed_demo_data
from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, aws_conn_uri_json, create_buckets
from drflow.engines.postgres.cluster import LocalCluster
from drflow.hosts import LocalHost
from drflow.operators.backup import PostgresFullBackupOperator
from tests.e2e.airflow_stack import AirflowStack, airflow_stack
from tests.e2e.browser import browser
from tests.fixtures.pg import airflow_conn_json, pg_workdir_context, running_cluster
from tests.fixtures.s3 import MotoServer
from tests.plan_inputs import task_params

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SPEC = "api-marketplace"
COMPONENTS = ["api-gateway", "api-portal", "portal-assets", "api-catalog", "user-database", "analytics", "billing"]
BACKUP = f"dr.{SPEC}.user-database.backup.daily-full"
DRILL = f"dr.{SPEC}.user-database.drill.weekly-restore"
METRICS = f"dr.{SPEC}.metrics"
BUCKETS = {"us-east-1": "drflow-backups-us-east-1", "us-west-2": "drflow-backups-us-west-2"}


class StatsdListener:
    """A UDP socket on loopback collecting every StatsD line sent to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.lines: list[str] = []
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        while True:
            try:
                data = self.sock.recv(65535)
            except OSError:
                return
            self.lines.extend(data.decode(errors="replace").splitlines())

    def gauges(self, prefix: str) -> dict[str, float]:
        found = {}
        for line in list(self.lines):
            name, _, rest = line.partition(":")
            value, _, kind = rest.partition("|")
            if name.startswith(prefix) and kind.startswith("g"):
                found[name] = float(value)
        return found


@pytest.fixture(scope="module")
def primary() -> Iterator[LocalCluster]:
    host = LocalHost()
    with pg_workdir_context(host) as workdir, running_cluster(workdir, "primary", host) as cluster:
        # Every database of the example spec, as the sandbox seeds them: the components on this primary share one
        # backup, which records each one's drill values in its own database.
        seed_demo_data(cluster.conninfo().dsn())
        yield cluster


@pytest.fixture(scope="module")
def statsd() -> Iterator[StatsdListener]:
    listener = StatsdListener()
    yield listener
    listener.sock.close()


def s3(moto: MotoServer, region: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto.endpoint_url,
        region_name=region,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )


@pytest.fixture(scope="module")
def stack(primary: LocalCluster, moto_server: MotoServer, statsd: StatsdListener) -> Iterator[AirflowStack]:
    for region, bucket in BUCKETS.items():
        create_buckets(moto_server.endpoint_url, [bucket], region)
    specs = Path(tempfile.mkdtemp(prefix="drflow-e2e-dashboard-specs-"))
    shutil.copy(ROOT / "plan_specs" / f"{SPEC}.yaml", specs)
    connections = {
        "AIRFLOW_CONN_DRFLOW_PG_PRIMARY": airflow_conn_json(primary),
        "AIRFLOW_CONN_DRFLOW_S3": aws_conn_uri_json(moto_server.endpoint_url, moto_server.region),
    }
    statsd_env = {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port),
    }
    try:
        with airflow_stack(specs, connections, extra_env=statsd_env) as running:
            alice = running.client("alice")
            for dag_id in (DRILL, METRICS):
                alice.wait_for_dag(dag_id, timeout=180)
            yield running
    finally:
        shutil.rmtree(specs, ignore_errors=True)


def run_dag(stack: AirflowStack, dag_id: str, state: str) -> str:
    """Unpause: the scheduler starts the newest scheduled run at once (no catchup); wait for it to end."""
    alice = stack.client("alice")
    alice.unpause(dag_id)
    deadline = time.monotonic() + 60
    runs: list[dict[str, Any]] = []
    while not runs and time.monotonic() < deadline:
        runs = alice.get(f"/api/v2/dags/{dag_id}/dagRuns", order_by="-run_after", limit=1)["dag_runs"]
        time.sleep(0.5)
    run_id = str(runs[0]["dag_run_id"]) if runs else alice.trigger(dag_id, {}, note="e2e: dashboard")
    run = alice.wait_run(dag_id, run_id, timeout=300)
    assert run["state"] == state, alice.task_instances(dag_id, run_id)
    return run_id


def back_up(primary: LocalCluster, moto: MotoServer) -> None:
    """The backup task of User Database's daily-full policy, with the inputs its DAG gives it, run here (the
    drill and the metrics run through Airflow; scheduling a third DAG would only cost time)."""
    params = task_params((ROOT / "plan_specs" / f"{SPEC}.yaml").read_text(), BACKUP.removeprefix("dr."), "take_backup")
    operator = PostgresFullBackupOperator(task_id="take_backup", **params)
    connections = {
        "AIRFLOW_CONN_DRFLOW_PG_PRIMARY": airflow_conn_json(primary),
        "AIRFLOW_CONN_DRFLOW_S3": aws_conn_uri_json(moto.endpoint_url, moto.region),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in connections.items():
            patch.setenv(name, value)
        dag_run = SimpleNamespace(run_id="e2e-dashboard", run_after=datetime.now(UTC))
        summary = operator.execute({"dag_run": dag_run})
    assert summary["backup_id"]


def damage_secondary_copy(moto: MotoServer) -> str:
    """Overwrite the largest object of the backup's us-west-2 copy with bytes of the same size."""
    client = s3(moto, "us-west-2")
    prefix = f"{SPEC}/user-database/backups/"
    objects = client.list_objects_v2(Bucket=BUCKETS["us-west-2"], Prefix=prefix)["Contents"]
    largest = max((o for o in objects if not o["Key"].endswith("manifest.json")), key=lambda o: o["Size"])
    client.put_object(Bucket=BUCKETS["us-west-2"], Key=largest["Key"], Body=b"\0" * largest["Size"])
    return str(largest["Key"])


def dashboard_rows(frame: Any) -> dict[str, str]:
    rows = frame.locator("tr.component")
    return {
        str(rows.nth(i).get_attribute("data-component")): str(rows.nth(i).get_attribute("data-status"))
        for i in range(rows.count())
    }


def test_the_dashboard_needs_the_airflow_login(stack: AirflowStack) -> None:
    page = requests.get(f"{stack.url}/dr-dashboard/", allow_redirects=False, timeout=30)
    assert page.status_code == 303 and "/auth/login" in page.headers["location"]
    assert requests.get(f"{stack.url}/dr-dashboard/api/status", timeout=30).status_code == 401
    status = stack.client("auditor").session.get(f"{stack.url}/dr-dashboard/api/status", timeout=60)
    assert status.status_code == 200, status.text
    [spec] = status.json()["specs"]
    assert [c["component"] for c in spec["components"]] == COMPONENTS


def test_a_failing_drill_turns_its_component_red(
    stack: AirflowStack, primary: LocalCluster, moto_server: MotoServer, statsd: StatsdListener
) -> None:
    back_up(primary, moto_server)
    with browser(stack.url) as sessions:
        alice = sessions()
        alice.login("alice", stack.passwords["alice"])
        alice.page.goto(f"{stack.url}/plugin/dr-dashboard")
        frame = alice.page.frame_locator("iframe[title='DR dashboard']")
        frame.locator("tr.component").first.wait_for(timeout=60_000)
        before = dashboard_rows(frame)
        assert list(before) == COMPONENTS
        assert before["user-database"] == "amber", before  # backed up, not yet proven by a drill

        damaged = damage_secondary_copy(moto_server)
        drill_run = run_dag(stack, DRILL, "failed")
        alice.page.reload()
        frame.locator("tr.component").first.wait_for(timeout=60_000)
        after = dashboard_rows(frame)
        frame.locator("tr.component[data-component='user-database']").scroll_into_view_if_needed()
        shots = [alice.screenshot("dr-dashboard-in-airflow-failed-drill")]
        alice.page.goto(f"{stack.url}/dr-dashboard/")  # the page alone, whole (the frame scrolls inside the UI)
        shots.append(alice.screenshot("dr-dashboard-page-failed-drill"))
        alice.page.go_back()
        frame.locator("tr.component").first.wait_for(timeout=60_000)
        print(f"\ndashboard screenshots: {', '.join(map(str, shots))}")
        assert after["user-database"] == "red", after
        reasons = frame.locator("tr.reasons[data-component='user-database']").inner_text()
        assert "drill weekly-restore failed" in reasons and damaged.rsplit("/", 1)[-1] in reasons
        link = frame.locator("tr.component[data-component='user-database'] a[href*='/runs/']", has_text="FAILED")
        assert f"/dags/{DRILL}/runs/" in str(link.get_attribute("href"))
        link.click()  # opens the drill's run in Airflow's own UI, not inside the frame
        alice.page.wait_for_url(f"**/dags/{DRILL}/runs/**", timeout=30_000)
        assert drill_run in unquote(alice.page.url)

    run_dag(stack, METRICS, "success")
    prefix = f"airflow.drflow.{SPEC}"
    gauges = statsd.gauges(prefix)
    assert gauges[f"{prefix}.user-database.status"] == 2, sorted(gauges)
    assert gauges[f"{prefix}.status"] == 2
    assert gauges[f"{prefix}.user-database.rto_objective_seconds"] == 1800
    assert 0 < gauges[f"{prefix}.user-database.rto_seconds"] < 1800
    assert gauges[f"{prefix}.user-database.recovery_success_ratio"] == 0.0
    assert f"{prefix}.user-database.backup_age_seconds.daily-full.s3-primary" in gauges
    assert f"{prefix}.billing.rto_seconds" not in gauges  # never measured: no made-up value
    history = s3(moto_server, "us-east-1").list_objects_v2(
        Bucket=BUCKETS["us-east-1"], Prefix=f"{SPEC}/{SPEC}/user-database/reports/metrics/"
    )
    [stored] = history["Contents"]
    body = s3(moto_server, "us-east-1").get_object(Bucket=BUCKETS["us-east-1"], Key=stored["Key"])["Body"].read()
    assert json.loads(body)["status"] == "red"
