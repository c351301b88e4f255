"""After the region-failover plan has run in the sandbox, `drflow sandbox up` refuses (nothing exported, exit 1),
`status` reports the real roles, and `drflow sandbox reset` gives back a writable primary with a streaming
replica, the DNS record and the data, so that the demo's database backup and drill pass again.

The plan's steps run through their operators with the params the plan builder writes for the example spec
(as tests/integration/test_failover.py does): a real lag gate, read-only fence, promotion and DNS switch.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drflow.devtools.demo import DEMO_RUNS, SPEC
from drflow.devtools.sandbox.dns import route53
from drflow.engines.postgres.cluster import free_port
from tests.plan_inputs import task_params

pytestmark = pytest.mark.slow

DRFLOW = str(Path(sys.executable).with_name("drflow"))
PLAN = ".plan.region-failover"


def drflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DRFLOW, "sandbox", *args], env=env, capture_output=True, text=True, timeout=600)


def exports(stdout: str) -> dict[str, str]:
    """The AIRFLOW_CONN_* values `up`/`reset` print, as the shell would set them."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = shlex.split(value)[0]
    return found


@pytest.fixture(scope="module")
def sandbox() -> Iterator[dict[str, str]]:
    """A sandbox of its own (directory and free ports), up, with its exports in the environment."""
    env = {
        # Connections other tests of this process set are not the sandbox's: `up` and `reset` print their own.
        **{name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW_CONN_")},
        "DRFLOW_SANDBOX_DIR": f"/var/tmp/drflow-test-sandbox-{uuid.uuid4().hex[:10]}",
        "DRFLOW_SANDBOX_PRIMARY_PORT": str(free_port()),
        "DRFLOW_SANDBOX_REPLICA_PORT": str(free_port()),
        "DRFLOW_SANDBOX_S3_PORT": str(free_port()),
        "DRFLOW_SANDBOX_WEBHOOK_PORT": str(free_port()),
    }
    try:
        up = drflow(env, "up")
        assert up.returncode == 0, up.stderr
        yield {**env, **exports(up.stdout)}
    finally:
        drflow(env, "down", "--purge")


def run_step(task_id: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from drflow.operators.failover import FenceOperator, LagGateOperator, PromoteOperator, ValidateSqlOperator
    from drflow.operators.traffic import SwitchDnsOperator

    operators = {
        "gate-lag": LagGateOperator,
        "fence-primary": FenceOperator,
        "promote-replica": PromoteOperator,
        "switch-dns": SwitchDnsOperator,
        "validate-new-primary": ValidateSqlOperator,
    }
    for name, value in env.items():
        if name.startswith("AIRFLOW_CONN_"):
            monkeypatch.setenv(name, value)
    params = task_params(SPEC.read_text(), PLAN, task_id)
    result: dict[str, Any] = operators[task_id](task_id=task_id, **params).execute({"params": {"reason": "drill"}})
    return result


def sql(env: dict[str, str], port_var: str, query: str) -> Any:
    port = int(env[port_var])
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="users", autocommit=True) as conn:
        row = conn.execute(query).fetchone()  # test SQL, no input
    return row[0] if row else None


def roles(env: dict[str, str]) -> dict[str, Any]:
    status = drflow(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    return dict(json.loads(status.stdout)["postgres"]["roles"])


def dns_value(env: dict[str, str]) -> str:
    client = route53(f"http://127.0.0.1:{env['DRFLOW_SANDBOX_S3_PORT']}")
    records = client.list_resource_record_sets(HostedZoneId="0IBYYURL65B4KJ4HBI6JLV")["ResourceRecordSets"]
    [record] = [r for r in records if r["Name"] == "db.api-marketplace.internal." and r["Type"] == "CNAME"]
    return str(record["ResourceRecords"][0]["Value"])


def test_after_a_region_failover_reset_brings_the_sandbox_back_and_the_demo_passes(
    sandbox: dict[str, str], airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for task_id in ("gate-lag", "fence-primary", "promote-replica", "switch-dns", "validate-new-primary"):
        run_step(task_id, sandbox, monkeypatch)
    # The application goes on writing on the new primary (the replica's port).
    written = sql(
        sandbox,
        "DRFLOW_SANDBOX_REPLICA_PORT",
        "insert into accounts values (900001, 'late@example.com', now()) returning id",
    )
    assert dns_value(sandbox) == "replica-1.us-west-2.api-marketplace.internal."

    refused = drflow(sandbox, "up")
    assert refused.returncode == 1 and "export " not in refused.stdout
    assert "drflow sandbox reset" in refused.stderr and "false" in refused.stdout  # `eval "$(…)"` fails too
    stuck = roles(sandbox)
    assert stuck["primary"]["role"] == "primary" and stuck["primary"]["fenced"] and not stuck["primary"]["writable"]
    assert stuck["replica"]["role"] == "primary" and stuck["replica"]["writable"] and len(stuck["problems"]) == 2

    reset = drflow(sandbox, "reset")
    assert reset.returncode == 0, reset.stderr
    assert exports(reset.stdout) == {k: v for k, v in sandbox.items() if k.startswith("AIRFLOW_CONN_")}
    assert "switchover: promoted the primary" in reset.stderr
    back = roles(sandbox)
    assert back["problems"] == [] and back["primary"]["writable"] and not back["primary"]["fenced"]
    assert back["replica"]["role"] == "standby" and back["replica"]["streaming"]
    assert back["replica"]["upstream"] == f"127.0.0.1:{sandbox['DRFLOW_SANDBOX_PRIMARY_PORT']}"
    assert sql(sandbox, "DRFLOW_SANDBOX_PRIMARY_PORT", "select id from accounts where id = 900001") == written
    assert dns_value(sandbox) == "primary.api-marketplace.internal."
    again = drflow(sandbox, "reset")
    assert again.returncode == 0 and "nothing to do" in again.stderr

    # The demo's database backup and restore drill, through Airflow as `make demo` runs them.
    from drflow.devtools.dag_runs import RESULT_PREFIX
    from drflow.devtools.demo_report import read_result
    from drflow.spec.load import load_spec

    spec = load_spec(SPEC).spec
    [run] = [r for r in DEMO_RUNS if r.component == "user-database"]
    ran = subprocess.run(
        [sys.executable, "-m", "drflow.devtools.dag_runs", *run.dag_ids(spec.metadata.name)],
        env={**sandbox, "DRFLOW_SPECS_DIR": str(SPEC.parent)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    states = [
        json.loads(line[len(RESULT_PREFIX) :])["state"]
        for line in ran.stdout.splitlines()
        if line.startswith(RESULT_PREFIX)
    ]
    assert ran.returncode == 0 and states == ["success", "success"], ran.stdout[-3000:]
    for name, value in sandbox.items():
        if name.startswith("AIRFLOW_CONN_"):
            monkeypatch.setenv(name, value)
    assert read_result(spec, run).passed
