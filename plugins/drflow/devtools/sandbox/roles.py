"""What each sandbox server really is now, asked of the server itself.

The sandbox's layout names two servers, `primary` (its port, data directory and the Airflow connection
`drflow_pg_primary`) and `replica`. A failover drill changes what they are: the old primary is fenced
read-only (or stopped), the replica is promoted. `drflow sandbox status` reports each server's real role,
and `drflow sandbox up` refuses to go on (and `reset` puts things back) when the layout no longer holds.
"""

from __future__ import annotations

import time
from typing import Any

from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.node import Node, node_health, write_state

LAYOUT = ("primary", "replica")
RESET_HINT = "run `drflow sandbox reset` to bring back a writable primary with a streaming replica"


def as_node(name: str, cluster: LocalCluster) -> Node:
    conn = cluster.conninfo()
    return Node(name=name, conn=conn, data_dir=cluster.data_dir, host=cluster.host, bin_dir=cluster.bin_dir)


def probe(name: str, cluster: LocalCluster) -> dict[str, Any]:
    """One server's real role: `primary` (not in recovery), `standby`, `stopped` or `unreachable`, whether a
    new session may write, a read-only fence, its timeline and where its WAL receiver streams from."""
    port = cluster.port
    facts: dict[str, Any] = {"name": name, "port": port, "initialized": cluster.is_initialized()}
    if not facts["initialized"] or not cluster.is_running():
        return {**facts, "role": "stopped", "writable": False, "fenced": False, "streaming": False}
    node = as_node(name, cluster)
    health = node_health(node)
    if not health["reachable"]:
        return {**facts, "role": "unreachable", "writable": False, "fenced": False, "streaming": False,
                "error": health.get("error")}  # fmt: skip
    state = write_state(node)
    in_recovery = bool(health["in_recovery"])
    return {
        **facts,
        "role": "standby" if in_recovery else "primary",
        "writable": state["state"] == "writable",
        "write_state": state["detail"],
        "fenced": bool(health["default_transaction_read_only"]) and not in_recovery,
        "timeline": health["timeline"],
        "streaming": health["wal_receiver"] == "streaming",
        "upstream": health["upstream"],
        "lsn": health["replay_lsn"] if in_recovery else health["current_lsn"],
    }


def problems(primary: dict[str, Any], replica: dict[str, Any]) -> list[str]:
    """How the servers differ from the layout (a writable primary, a replica streaming from it); [] when it holds."""
    found = []
    if primary["role"] != "primary":
        also = ", not a primary" if primary["role"] == "standby" else ""
        found.append(f"the primary (port {primary['port']}) is {_what(primary)}{also}")
    elif not primary["writable"]:
        fence = " (fenced: default_transaction_read_only = on)" if primary["fenced"] else ""
        found.append(f"the primary (port {primary['port']}) refuses writes{fence}")
    if replica["role"] == "primary":
        promoted = "promoted and writable" if replica["writable"] else "promoted (out of recovery)"
        found.append(f"the replica (port {replica['port']}) was {promoted}: it is a primary now")
    elif replica["role"] != "standby":
        found.append(f"the replica (port {replica['port']}) is {_what(replica)}")
    elif not follows(replica, primary):
        upstream = replica.get("upstream") or "nothing (its WAL receiver is not streaming)"
        found.append(f"the replica (port {replica['port']}) streams from {upstream}, not from the primary")
    return found


def follows(replica: dict[str, Any], primary: dict[str, Any]) -> bool:
    return bool(replica.get("streaming") and str(replica.get("upstream", "")).endswith(f":{primary['port']}"))


def wait_for_layout(primary: LocalCluster, replica: LocalCluster, timeout: float = 30.0) -> dict[str, Any]:
    """Both servers' roles once the layout holds, or as they are after `timeout` seconds (a replica that has
    just started needs a moment before its WAL receiver streams)."""
    deadline = time.monotonic() + timeout
    while True:
        roles = {"primary": probe("primary", primary), "replica": probe("replica", replica)}
        found = problems(roles["primary"], roles["replica"])
        settling = len(found) == 1 and roles["replica"]["role"] == "standby" and roles["primary"]["writable"]
        if not found or not settling or time.monotonic() > deadline:
            return {**roles, "problems": found}
        time.sleep(0.2)


def describe(facts: dict[str, Any]) -> str:
    """One line for people: what the server is, as it says itself."""
    role = facts["role"]
    if role in ("stopped", "unreachable"):
        return _what(facts)
    if role == "primary":
        if facts["writable"]:
            what = "writable primary"
        elif facts["fenced"]:
            what = "primary fenced read-only (default_transaction_read_only = on)"
        else:
            what = f"primary refusing writes ({facts.get('write_state', '')})"
        return f"{what}, timeline {facts['timeline']}"
    upstream = f"streaming from {facts['upstream']}" if facts["streaming"] else "not streaming"
    return f"standby {upstream}, timeline {facts['timeline']}, replayed up to {facts['lsn']}"


def _what(facts: dict[str, Any]) -> str:
    if facts["role"] == "stopped":
        return "stopped" if facts.get("initialized") else "not created"
    if facts["role"] == "unreachable":
        return f"running but not answering ({facts.get('error', 'no answer')})"
    return "a standby" if facts["role"] == "standby" else "a primary"
