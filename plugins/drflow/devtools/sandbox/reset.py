"""`drflow sandbox reset`: back to a writable primary on the primary's port with a replica streaming from it.

A failover drill leaves the old primary fenced (or stopped) and the replica promoted. The reset fails back
the way a planned switchover does, keeping the newest data, with drflow's own failover engine:

1. the data to keep is the newest primary's: the server out of recovery on the highest timeline (a promoted
   replica is on a newer timeline than the primary it replaced); on a tie, the layout's primary;
2. if that is the replica: the old primary is fenced (if it still takes writes), rewound onto the replica
   with `pg_rewind` (cloned afresh when rewind cannot) and streams from it until caught up; then the
   replica is fenced read-only, the old primary is promoted once it has replayed everything (the lag gate
   and the split-brain guard of a plan's promote step), and the replica is rewound to follow it;
3. if it is the layout's primary: its read-only fence is lifted and the replica, unless it already streams
   from it, is fenced and rewound to follow it (writes a promoted replica took on an older timeline are
   discarded; the steps say so).

A stopped server that would start as a primary is left stopped while the other one is a running primary
(starting it would make two writable primaries); `pg_rewind` works on it as it is. The standby streams as
`drflow_sandbox_replicator`, a plain replication role (drflow's rebuild refuses the admin user), created on
the primary kept.
"""

from __future__ import annotations

import time
from typing import Any

from drflow.devtools.sandbox.postgres import FAST_RESTART
from drflow.devtools.sandbox.roles import as_node, probe, problems, wait_for_layout
from drflow.engines.postgres.cluster import LocalCluster
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.failover import promote
from drflow.engines.postgres.fence import fence, unfence
from drflow.engines.postgres.node import connect
from drflow.engines.postgres.rebuild import rebuild_replica, wait_caught_up

REPLICATOR = "drflow_sandbox_replicator"
TIMEOUT_S = 300.0
SETTLE_S = 2.0
"""The lag gate's allowance before the switchover's promotion: the fenced replica writes no commits, so
the old primary only has the last records in flight to replay (the gate waits that long for them)."""


class ResetError(RuntimeError):
    """The sandbox's servers could not be brought back to the layout; the message says what is left."""


def reset_postgres(primary: LocalCluster, replica: LocalCluster, slot: str) -> dict[str, Any]:
    """Fail back (or re-point the replica) until the layout holds; what was found, what was done, how long."""
    started = time.monotonic()
    clusters = {"primary": primary, "replica": replica}
    for cluster in clusters.values():
        if cluster.is_initialized():
            cluster.configure(**FAST_RESTART)  # a sandbox made before this setting existed: from its next start
    _start(clusters)
    before = wait_for_layout(primary, replica, timeout=15.0)  # a standby just started needs a moment to stream
    steps: list[str] = []
    if before.pop("problems"):
        keep = data_to_keep(before)
        if keep == "replica":
            _fail_back(primary, replica, slot, steps)
        else:
            if keep is None:
                promote(as_node("primary", primary), fence_node=None, max_lag_s=0.0, override=True, timeout=TIMEOUT_S)
                steps.append(f"promoted the primary (port {primary.port}): neither server was out of recovery")
            if before["replica"]["role"] == "primary":
                steps.append(
                    f"the replica (port {replica.port}) was a primary on timeline {before['replica']['timeline']}; "
                    "what it took since it was promoted is discarded"
                )
            _make_primary(primary, steps)
            _fence_if_writable(replica, steps)
            _follow(replica, primary, slot, steps)
    after = {name: probe(name, cluster) for name, cluster in clusters.items()}
    left = problems(after["primary"], after["replica"])
    if left:
        raise ResetError(
            f"after the reset {'; '.join(left)}. Server logs: {primary.data_dir}/log, {replica.data_dir}/log, "
            f"{primary.server_log}; to start over from nothing: drflow sandbox down --purge && drflow sandbox up"
        )
    return {
        "before": before,
        "after": after,
        "steps": steps or ["nothing to do: the primary is writable and the replica streams from it"],
        "seconds": round(time.monotonic() - started, 1),
    }


def _start(clusters: dict[str, LocalCluster]) -> None:
    """Start every stopped server that comes up as a standby; one that would come up as a primary only
    when the other is not a running primary (no second writable primary)."""
    for cluster in clusters.values():
        if cluster.is_initialized() and (cluster.data_dir / "standby.signal").exists():
            cluster.start(TIMEOUT_S)
    for name, cluster in clusters.items():
        other = next(c for n, c in clusters.items() if n != name)
        other_is_primary = other.is_initialized() and other.is_running() and probe("other", other)["role"] == "primary"
        if cluster.is_initialized() and not cluster.is_running() and not other_is_primary:
            cluster.start(TIMEOUT_S)


def data_to_keep(roles: dict[str, dict[str, Any]]) -> str | None:
    """The newest primary's name (None: neither server is out of recovery)."""
    primaries = [facts for facts in roles.values() if facts["role"] == "primary"]
    if not primaries:
        return None
    return str(max(primaries, key=lambda facts: (facts["timeline"], facts["name"] == "primary"))["name"])


def _fail_back(primary: LocalCluster, replica: LocalCluster, slot: str, steps: list[str]) -> None:
    """The replica holds the newest data: the primary follows it, then a switchover makes it primary again."""
    _fence_if_writable(primary, steps)
    _make_primary(replica, steps)
    _follow(primary, replica, None, steps)
    new, old = as_node("replica", replica), as_node("primary", primary)
    fence(new, "read-only")
    steps.append(f"switchover: fenced the replica (port {replica.port}) read-only")
    wait_caught_up(new.conn, old, TIMEOUT_S)
    promoted = promote(old, fence_node=new, primary=new, max_lag_s=SETTLE_S, timeout=TIMEOUT_S)
    steps.append(f"switchover: promoted the primary (port {primary.port}), now on timeline {promoted['timeline']}")
    _follow(replica, primary, slot, steps)


def _fence_if_writable(cluster: LocalCluster, steps: list[str]) -> None:
    name = cluster.data_dir.name  # the layout's name: its data directory is <root>/primary or <root>/replica
    if probe(name, cluster)["writable"]:
        fence(as_node(name, cluster), "read-only")
        steps.append(f"fenced the {name} (port {cluster.port}) read-only: it took writes and must follow the other")


def _make_primary(cluster: LocalCluster, steps: list[str]) -> None:
    """Lift a read-only fence of the server whose data is kept, and give it the standby's replication role."""
    node = as_node(cluster.data_dir.name, cluster)
    if unfence(node):
        steps.append(f"lifted the read-only fence of port {cluster.port}")
    with connect(node.conn) as db:
        if db.execute("select 1 from pg_roles where rolname = %s", (REPLICATOR,)).fetchone() is None:
            db.execute(f"create role {REPLICATOR} with login replication")  # a constant name, no input


def _follow(cluster: LocalCluster, source: LocalCluster, slot: str | None, steps: list[str]) -> None:
    node = as_node(cluster.data_dir.name, cluster)
    replication = PgConnInfo(host="127.0.0.1", port=source.port, user=REPLICATOR)
    # A sandbox's files need not reach the disk before it goes on (pg_rewind's fsync of every file is most
    # of a rebuild here); the servers' own commits still do.
    done = rebuild_replica(node, source.conninfo(), replication=replication, slot=slot, timeout=TIMEOUT_S, sync=False)
    if done["path"] != "already-streaming":
        how = "rewound with pg_rewind" if done["path"] == "rewind" else f"cloned afresh ({done.get('rewind_error')})"
        steps.append(f"port {cluster.port} {how}, streaming from port {source.port} ({done['total_s']}s)")
