"""Failover benchmark: plain ``pg_promote()`` against drflow's guarded promotion, on one pair of clusters.

Creates a PostgreSQL 15 primary and a streaming replica (slot ``bench_replica``) under
/var/tmp/drflow-bench (as root they run as postgres). Every round, for each side (the order flips
every round): write ``--rows`` rows on the primary, wait until the replica has replayed them, then

  plain   SELECT pg_promote(wait => true) on the replica, then poll until a new session can write
  drflow  what a recovery plan's steps do: gate_lag (LagGateOperator) + fence read-only
          (FenceOperator) + promote (PromoteOperator: lag gate and split-brain guard again,
          pg_promote, wait until a new session can write)

and rebuild the pair (not timed against each other): fence the promoted replica, lift the fence
of the primary, rebuild the replica as its replica with drflow's rebuild_replica (pg_rewind).
Both sides stop the clock at the same point: the first write a new session can make.

Prints each side's best and median, the ratio drflow/plain and drflow's extra seconds, where
drflow's time goes, and how long each rebuild took. The Airflow stack's own figures (approval to
writable, trigger to validated) come from the end-to-end harness and are added beside these.
Usage: .venv/bin/python benchmarks/failover.py [--rounds 5] [--rows 10000] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from drflow.engines.postgres.bindir import find_bin_dir
from drflow.engines.postgres.cluster import ClusterError, LocalCluster, create_replica, free_port
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.failover import gate_lag, promote
from drflow.engines.postgres.fence import fence, unfence
from drflow.engines.postgres.node import Node, connect
from drflow.engines.postgres.rebuild import rebuild_replica, wait_caught_up
from drflow.hosts import LocalHost

BENCH_ROOT = Path("/var/tmp/drflow-bench")
REPLICATOR = "drflow_bench_replicator"
SLOT = "bench_replica"
MAX_LAG_S = 60.0


@dataclass
class Pair:
    primary: LocalCluster
    replica: LocalCluster

    def node(self, which: str) -> Node:
        cluster = self.primary if which == "primary" else self.replica
        return Node(which, cluster.conninfo(), cluster.data_dir, cluster.host, cluster.bin_dir)


@contextmanager
def bench_pair(root: Path, bin_dir: Path | None = None, keep: bool = False) -> Iterator[Pair]:
    """A started primary with a table ``bench`` and a caught-up streaming replica; stopped afterwards."""
    host = LocalHost()
    primary = LocalCluster(root / "primary", free_port(), root / "run", bin_dir=bin_dir or find_bin_dir(), host=host)
    replica: LocalCluster | None = None
    try:
        primary.init(no_sync=True)
        for attempt in range(3):
            try:
                primary.start()
                break
            except ClusterError as exc:  # free_port() races with other processes
                if "Address already in use" not in str(exc) or attempt == 2:
                    raise
                primary.port = free_port()
        with psycopg.connect(**primary.conninfo().libpq_kwargs(), autocommit=True) as db:
            db.execute("create table bench (id bigserial primary key, payload text, at timestamptz default now())")
            db.execute(f"create role {REPLICATOR} with login replication")  # what a rebuilt replica streams as
        replica = create_replica(primary, root / "replica", free_port(), SLOT, socket_dir=root / "run")
        yield Pair(primary, replica)
    finally:
        for cluster in (replica, primary):
            if cluster is not None:
                cluster.stop("immediate")
        if keep:
            print(f"kept {root} (clusters stopped)")
        else:
            shutil.rmtree(root, ignore_errors=True)


def prepare_round(pair: Pair, rows: int) -> None:
    """Fresh writes on the primary, replayed by the replica: both sides start from the same state."""
    with psycopg.connect(**pair.primary.conninfo().libpq_kwargs(), autocommit=True) as db:
        db.execute("insert into bench (payload) select md5(g::text) from generate_series(1, %s::int) g", (rows,))
    wait_caught_up(pair.primary.conninfo(), pair.node("replica"), 120)


def _writable(conn: psycopg.Connection[Any]) -> bool:
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("create temp table bench_probe (id int)")
        return True
    except psycopg.errors.ReadOnlySqlTransaction:
        return False


def measure_plain_promote(pair: Pair) -> float:
    """Seconds from ``pg_promote(wait => true)`` until a new session on the replica can write."""
    started = time.perf_counter()
    with connect(pair.replica.conninfo()) as db:
        db.execute("select pg_promote(wait => true, wait_seconds => 60)")
    while True:
        with connect(pair.replica.conninfo()) as db:
            if _writable(db):
                return time.perf_counter() - started
        time.sleep(0.01)


def measure_drflow_promote(pair: Pair) -> dict[str, float]:
    """Seconds of a plan's gate, fence and promote steps (engine calls, no Airflow), by phase and in total."""
    old, new = pair.node("primary"), pair.node("replica")
    started = time.perf_counter()
    gate_lag(old, new, MAX_LAG_S)
    gated = time.perf_counter()
    fence(old, "read-only")
    fenced = time.perf_counter()
    result = promote(new, fence_node=old, max_lag_s=MAX_LAG_S)
    done = time.perf_counter()
    return {
        "gate_lag": gated - started,
        "fence": fenced - gated,
        "promote: guards again": result["guard_s"],
        "promote: pg_promote": result["promote_s"],
        "promote: until writable": result["writable_s"],
        "promote: other": (done - fenced) - result["guard_s"] - result["promote_s"] - result["writable_s"],
        "total_s": done - started,
    }


def reset_pair(pair: Pair) -> dict[str, Any]:
    """Make the replica a replica of the primary again (pg_rewind), and the primary writable."""
    started = time.perf_counter()
    fence(pair.node("replica"), "read-only")
    unfence(pair.node("primary"))
    replication = PgConnInfo(host="127.0.0.1", port=pair.primary.port, user=REPLICATOR)
    result = rebuild_replica(
        pair.node("replica"), pair.primary.conninfo(), replication=replication, slot=SLOT, timeout=120
    )
    return {"path": result["path"], "seconds": time.perf_counter() - started}


def airflow_figures(record: dict[str, Any]) -> dict[str, float]:
    """Through Airflow, from a region-failover run's recovery record (task-instance and HITL timestamps):
    the approval of the declaration to the end of the promote step (the new primary takes writes then),
    and the trigger to the end of the last verification step."""
    from datetime import datetime

    def at(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    steps = record["steps"]
    [approved] = [a for a in record["approvals"] if a["task_id"] == "declare" and a["decision"] == "approved"]
    [promoted] = [s for s in steps if s.get("action") == "promote"]
    validated = max(at(s["end"]) for s in steps if s.get("verification") and s.get("end"))
    triggered = at(record["triggered_by"]["at"] or record["run"]["queued_at"])
    return {
        "approval → writable new primary": (at(promoted["end"]) - at(approved["at"])).total_seconds(),
        "trigger → validated": (validated - triggered).total_seconds(),
        "  of which the declaration waited": float(approved["wait_s"] or 0),
    }


def run_through_airflow() -> dict[str, Any]:
    """One approved region-failover run on the real Airflow stack (tests/e2e), returning its recovery record."""
    import json
    import os
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="drflow-bench-e2e-") as out:
        env = {**os.environ, "DRFLOW_E2E_RECORD_DIR": out}
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/test_region_failover.py"]
        done = subprocess.run([*argv, "-k", "approves"], cwd=root, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the end-to-end run failed:\n{done.stdout[-3000:]}")
        [path] = Path(out).glob("*.json")
        record: dict[str, Any] = json.loads(path.read_text())
        return record


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def summary(label: str, values: list[float]) -> str:
    return f"{label:<8} best {min(values):7.3f}s  median {statistics.median(values):7.3f}s  ({len(values)} rounds)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each side, alternating (5)")
    parser.add_argument("--rows", type=int, default=10000, help="rows written before each promotion (10000)")
    parser.add_argument("--keep", action="store_true", help="leave the stopped clusters and their directory")
    parser.add_argument("--bin-dir", type=Path, default=find_bin_dir(), help="PostgreSQL binaries")
    parser.add_argument(
        "--airflow",
        action="store_true",
        help="also run the plan through the real Airflow stack (tests/e2e, about 2 minutes) and print "
        "approval → writable and trigger → validated against plain pg_promote()",
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.rows < 0:
        parser.error("--rounds must be at least 1 and --rows at least 0")
    signal.signal(signal.SIGTERM, _terminate)
    BENCH_ROOT.mkdir(mode=0o755, exist_ok=True)
    BENCH_ROOT.chmod(0o755)  # the postgres user must traverse it
    root = BENCH_ROOT / uuid.uuid4().hex[:12]
    root.mkdir(mode=0o755)

    plain_s: list[float] = []
    drflow: list[dict[str, float]] = []
    rebuilds: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with bench_pair(root, args.bin_dir, args.keep) as pair:
        print(f"primary on port {pair.primary.port}, replica on {pair.replica.port}: {time.perf_counter() - t0:.1f}s")
        for r in range(args.rounds):

            def plain(r: int = r) -> None:
                prepare_round(pair, args.rows)
                plain_s.append(measure_plain_promote(pair))
                rebuilds.append(reset_pair(pair))
                print(
                    f"round {r}: plain  {plain_s[-1]:6.3f}s   (rebuild by {rebuilds[-1]['path']} "
                    f"{rebuilds[-1]['seconds']:.1f}s)"
                )

            def ours(r: int = r) -> None:
                prepare_round(pair, args.rows)
                drflow.append(measure_drflow_promote(pair))
                rebuilds.append(reset_pair(pair))
                print(
                    f"round {r}: drflow {drflow[-1]['total_s']:6.3f}s   (rebuild by {rebuilds[-1]['path']} "
                    f"{rebuilds[-1]['seconds']:.1f}s)"
                )

            sides: list[Callable[[], None]] = [plain, ours] if r % 2 == 0 else [ours, plain]
            for side in sides:
                side()

    drflow_s = [d["total_s"] for d in drflow]
    print(summary("plain", plain_s))
    print(summary("drflow", drflow_s))
    print(
        f"ratio drflow/plain: {min(drflow_s) / min(plain_s):.2f} best, "
        f"{statistics.median(drflow_s) / statistics.median(plain_s):.2f} median; drflow's guards and fence add "
        f"{statistics.median(drflow_s) - statistics.median(plain_s):.3f}s (median)"
    )
    print("drflow by phase (median of rounds):")
    for phase in [k for k in drflow[0] if k != "total_s"]:
        print(f"  {phase:<26} {statistics.median(d[phase] for d in drflow):7.3f}s")
    seconds = [b["seconds"] for b in rebuilds]
    paths = sorted({b["path"] for b in rebuilds})
    print(
        f"rebuild between rounds ({', '.join(paths)}): median {statistics.median(seconds):.1f}s, "
        f"best {min(seconds):.1f}s"
    )
    if args.airflow:
        print("through Airflow (scheduler, workers, REST approval; one run of tests/e2e):")
        for label, value in airflow_figures(run_through_airflow()).items():
            ratio = "" if label.startswith(" ") else f"   {value / statistics.median(plain_s):6.1f}x plain median"
            print(f"  {label:<34} {value:7.2f}s{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
