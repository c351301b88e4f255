"""`drflow sandbox up|down|status`: a primary with a streaming replica, a moto S3 server, demo data.

Everything lives under one directory (default `/var/tmp/drflow-sandbox-<uid>-<checkout hash>`, or
$DRFLOW_SANDBOX_DIR) on fixed loopback ports, so the printed AIRFLOW_CONN_* exports stay valid across restarts.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from drflow.devtools.airflow_env import PROJECT_ROOT
from drflow.devtools.sandbox import postgres as sandbox_pg
from drflow.devtools.sandbox import s3 as sandbox_s3
from drflow.devtools.sandbox.demo_data import seed_demo_data

PRIMARY_PORT = int(os.environ.get("DRFLOW_SANDBOX_PRIMARY_PORT", "55432"))
REPLICA_PORT = int(os.environ.get("DRFLOW_SANDBOX_REPLICA_PORT", "55433"))
MOTO_PORT = int(os.environ.get("DRFLOW_SANDBOX_S3_PORT", "55000"))
WEBHOOK_PORT = int(os.environ.get("DRFLOW_SANDBOX_WEBHOOK_PORT", "55001"))
DEFAULT_SPEC = PROJECT_ROOT / "plan_specs" / "api-marketplace.yaml"
# Not inside the checkout: PostgreSQL runs as the `postgres` user, which cannot enter a clone under /root or
# any other 0700 directory. /var/tmp is open to every user (sticky) and survives reboots like the checkout does.
SANDBOX_PARENT = Path("/var/tmp")


def sandbox_root() -> Path:
    """$DRFLOW_SANDBOX_DIR, else one directory per user and checkout under /var/tmp."""
    if configured := os.environ.get("DRFLOW_SANDBOX_DIR"):
        return Path(configured).resolve()
    checkout = hashlib.sha256(str(PROJECT_ROOT).encode()).hexdigest()[:10]
    return SANDBOX_PARENT / f"drflow-sandbox-{os.geteuid()}-{checkout}"


def _pg_conn_json(port: int) -> str:
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": port,
            "login": "postgres",
            "schema": "postgres",
        }
    )


def notification_channels(spec_path: Path) -> dict[str, dict[str, Any]]:
    """The spec's notification channels (name -> the channel's fields but its name); none when the spec is not there."""
    from drflow.spec.load import load_spec

    if not spec_path.is_file():
        return {}  # `sandbox status` away from the clone: the other connections still print

    spec = load_spec(spec_path).spec
    return {c.name: c.model_dump(mode="json", exclude={"name"}) for c in spec.notifications}


def connections(endpoint_url: str, region: str, spec_path: Path = DEFAULT_SPEC) -> dict[str, str]:
    """The Airflow connections the API Marketplace spec names, pointing at the sandbox."""
    from drflow.devtools.sandbox.airflow_users import audit_connection, notes_connection
    from drflow.devtools.sandbox.webhook import channel_connections

    return {
        # Chat and webhook channels post to the sandbox's receiver (.sandbox/received.jsonl).
        **channel_connections(notification_channels(spec_path), WEBHOOK_PORT),
        "AIRFLOW_CONN_DRFLOW_PG_PRIMARY": _pg_conn_json(PRIMARY_PORT),
        "AIRFLOW_CONN_DRFLOW_PG_REPLICA": _pg_conn_json(REPLICA_PORT),
        "AIRFLOW_CONN_DRFLOW_S3": sandbox_s3.aws_conn_uri_json(endpoint_url, region),
        # Route53 of the recovery plans' switch_dns steps (moto speaks it on the same endpoint).
        "AIRFLOW_CONN_DRFLOW_AWS": sandbox_s3.aws_conn_uri_json(endpoint_url, region),
        # The recovery record's (and four eyes') read-only user on `make airflow`'s REST API.
        "AIRFLOW_CONN_DRFLOW_AIRFLOW_API": audit_connection(),
        "AIRFLOW_CONN_DRFLOW_AIRFLOW_NOTES": notes_connection(),
    }


def _buckets(spec_path: Path) -> list[tuple[str, str]]:
    from drflow.spec.load import load_spec

    spec = load_spec(spec_path).spec
    return [(t.bucket, t.region) for t in spec.storage if t.type == "s3"]


def sandbox_up(spec_path: Path = DEFAULT_SPEC) -> dict[str, Any]:
    """Start what is not running and check that the servers are what the exports say; raise otherwise."""
    sandbox_s3.require_moto()
    root = sandbox_root()
    root.mkdir(parents=True, exist_ok=True)
    _refuse_a_promoted_replica(root)
    pg_state = sandbox_pg.up(root / "pg", PRIMARY_PORT, REPLICA_PORT)
    pg_state["roles"] = _require_layout(root)
    endpoint_url = f"http://127.0.0.1:{MOTO_PORT}"
    state_file = root / "s3.json"
    if not sandbox_s3.is_moto_running(MOTO_PORT):
        pid = sandbox_s3.start_moto_server(MOTO_PORT, root / "moto.log")
        state_file.write_text(json.dumps({"pid": pid, "port": MOTO_PORT}))
    _start_webhook_receiver(root)
    buckets = _buckets(spec_path)
    for bucket, region in buckets:
        sandbox_s3.create_buckets(endpoint_url, [bucket], region, object_lock=True)  # the spec's compliance retention
    from drflow.devtools.sandbox.dns import ensure_records, switch_dns_steps
    from drflow.spec.load import load_spec

    spec = load_spec(spec_path).spec
    dns_records = ensure_records(endpoint_url, switch_dns_steps(spec))
    seeded = seed_demo_data(f"host=127.0.0.1 port={PRIMARY_PORT} user=postgres dbname=postgres")
    from drflow.devtools.sandbox.demo_config import seed_demo_config

    seeded_config = seed_demo_config(spec)
    from drflow.devtools.sandbox.demo_sources import ensure_volumes, seed_demo_files

    seeded_files = seed_demo_files(spec)
    volumes = ensure_volumes(endpoint_url, spec)
    region = buckets[0][1] if buckets else "us-east-1"
    return {
        "root": str(root),
        "postgres": pg_state,
        "s3": {"endpoint_url": endpoint_url, "buckets": [b for b, _ in buckets]},
        "route53": dns_records,
        "demo_data": seeded,
        "demo_config": seeded_config,
        "demo_files": seeded_files,
        "ebs_volumes": volumes,
        "webhook": {"url": f"http://127.0.0.1:{WEBHOOK_PORT}", "received": str(root / "received.jsonl")},
        "connections": connections(endpoint_url, region, spec_path),
    }


def _refuse_a_promoted_replica(root: Path) -> None:
    """Before starting anything: a running replica that was promoted means a stopped primary must stay down
    (started, it would be a second writable primary)."""
    from drflow.devtools.sandbox.roles import RESET_HINT, probe

    pair = sandbox_pg.clusters(root / "pg")
    if pair is None or not (pair[1].is_initialized() and pair[1].is_running()):
        return
    replica = probe("replica", pair[1])
    if replica["role"] == "primary":
        raise sandbox_pg.SandboxError(
            f"the sandbox's replica (port {replica['port']}) is a primary now (promoted by a failover drill?), so "
            f"the exports would point drflow_pg_primary at the old primary; {RESET_HINT}"
        )


def _require_layout(root: Path) -> dict[str, Any]:
    """The servers' real roles; raise unless the primary is writable and the replica streams from it."""
    from drflow.devtools.sandbox.roles import RESET_HINT, wait_for_layout

    pair = sandbox_pg.clusters(root / "pg")
    assert pair is not None  # sandbox_pg.up wrote the layout
    roles = wait_for_layout(*pair)
    if roles["problems"]:
        raise sandbox_pg.SandboxError(
            f"the sandbox's servers are not what its exports name: {'; '.join(roles['problems'])} (after a failover "
            f"drill?), so nothing was exported; {RESET_HINT}"
        )
    return roles


def sandbox_reset(spec_path: Path = DEFAULT_SPEC) -> dict[str, Any]:
    """Back to a writable primary with a streaming replica (failing back), the DNS records as `up` made them, and
    the demo data; then what `up` returns, with what the reset did under `reset`."""
    from drflow.devtools.sandbox.dns import reset_records, switch_dns_steps
    from drflow.devtools.sandbox.reset import reset_postgres
    from drflow.spec.load import load_spec

    root = sandbox_root()
    pair = sandbox_pg.clusters(root / "pg")
    done: dict[str, Any] = {"steps": ["no sandbox yet: up creates one"]}
    if pair is not None and (pair[0].is_initialized() or pair[1].is_initialized()):
        done = reset_postgres(*pair, sandbox_pg.SLOT_NAME)
    state = sandbox_up(spec_path)
    moved = reset_records(state["s3"]["endpoint_url"], switch_dns_steps(load_spec(spec_path).spec))
    done["steps"] += [f"DNS {m['record']}: {m['from']} -> {m['to']}" for m in moved]
    return {**state, "reset": done}


def _start_webhook_receiver(root: Path) -> None:
    from drflow.devtools.sandbox import webhook

    if not webhook.is_running(WEBHOOK_PORT):
        pid = webhook.start_receiver(WEBHOOK_PORT, root / "received.jsonl", root / "webhook.log")
        (root / "webhook.json").write_text(json.dumps({"pid": pid, "port": WEBHOOK_PORT}))


def sandbox_down(purge: bool = False) -> None:
    root = sandbox_root()
    state_file = root / "s3.json"
    if state_file.exists():
        sandbox_s3.stop_moto_server(int(json.loads(state_file.read_text())["pid"]))
        state_file.unlink()
    webhook_state = root / "webhook.json"
    if webhook_state.exists():
        from drflow.devtools.sandbox.webhook import stop_receiver

        stop_receiver(int(json.loads(webhook_state.read_text())["pid"]))
        webhook_state.unlink()
    sandbox_pg.down(root / "pg", purge=purge)
    if purge:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def sandbox_status() -> dict[str, Any]:
    """What runs, and what each server really is (asked of the server: in recovery, fenced, writable, streaming)."""
    from drflow.devtools.sandbox.roles import probe, problems

    root = sandbox_root()
    endpoint_url = f"http://127.0.0.1:{MOTO_PORT}"
    postgres = sandbox_pg.status(root / "pg")
    pair = sandbox_pg.clusters(root / "pg")
    if pair is not None:
        roles = {"primary": probe("primary", pair[0]), "replica": probe("replica", pair[1])}
        postgres["roles"] = {**roles, "problems": problems(roles["primary"], roles["replica"])}
    return {
        "root": str(root),
        "postgres": postgres,
        "s3": {"endpoint_url": endpoint_url, "running": sandbox_s3.is_moto_running(MOTO_PORT)},
        "connections": connections(endpoint_url, "us-east-1"),
    }
