"""RPO benchmark: the data actually lost when the primary dies, for the two ways drflow protects it.

A throwaway primary (with a streaming replica on a physical slot) takes a continuous write load of
small single-row transactions (``--rate`` a second, each row stamped with the server's clock).
drflow takes a full backup, then archives WAL every ``--archive-every`` seconds into a local store
(drflow.jobs.wal.archive_wal, the job behind the incremental backup DAG). After ``--duration``
seconds of load the primary is killed (``pg_ctl stop -m immediate``) and the loss is measured for

  (a) promoting the streaming replica (pg_promote());
  (b) restoring the newest full backup plus the archived WAL to the newest recoverable point
      (drflow.jobs.pitr, what `drflow restore --target-time` does).

Lost = transactions whose commit the client saw acknowledged but whose row is missing afterwards,
in transactions and in seconds (newest acknowledged commit minus newest surviving one). The
figures are printed next to the RPO of every component of the API Marketplace spec, and (b) also
as a ratio of the archive interval, its expected bound. Everything is stopped and removed at the
end, even on failure or SIGTERM, unless --keep is given.
Usage: .venv/bin/python benchmarks/rpo.py [--archive-every 10] [--duration 35] [--rate 300] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from drflow.engines.postgres.bindir import find_bin_dir
from drflow.engines.postgres.cluster import ClusterError, LocalCluster, create_replica, free_port
from drflow.hosts import LocalHost
from drflow.jobs.backup import FullBackupRequest, take_full_backup, target_catalogs
from drflow.jobs.pitr import plan_point_in_time, restore_to_point
from drflow.jobs.wal import WalArchiveRequest, archive_wal, default_slot
from drflow.spec.load import load_spec
from drflow.spec.types import format_duration
from drflow.store.wal import recoverable_range

BENCH_ROOT = Path("/var/tmp/drflow-bench")
SPEC = Path(__file__).resolve().parents[1] / "plan_specs" / "api-marketplace.yaml"
COMPONENT = "user-database"
DATABASE = "users"


class Writer(threading.Thread):
    """Single-row inserts at a steady rate; remembers every acknowledged commit (id, server time)."""

    def __init__(self, cluster: LocalCluster, rate: float) -> None:
        super().__init__(daemon=True)
        self.conninfo = cluster.conninfo(DATABASE)
        self.interval = 1.0 / rate
        self.acked: list[tuple[int, datetime]] = []
        self.halt = threading.Event()
        self.started_at = 0.0
        self.stopped_at = 0.0

    def run(self) -> None:
        try:
            with psycopg.connect(**self.conninfo.libpq_kwargs(), autocommit=True) as db:
                self.started_at = time.monotonic()
                next_at = self.started_at
                while not self.halt.is_set():
                    row = db.execute("insert into events default values returning id, written_at").fetchone()
                    assert row is not None
                    self.acked.append((int(row[0]), row[1]))
                    next_at += self.interval
                    time.sleep(max(0.0, next_at - time.monotonic()))
        except psycopg.Error:
            pass  # the primary was killed: the benchmark's point
        finally:
            self.stopped_at = time.monotonic()


class Archiver(threading.Thread):
    """archive_wal every `every` seconds until stopped or the primary is gone."""

    def __init__(self, cluster: LocalCluster, target: dict[str, Any], every: float) -> None:
        super().__init__(daemon=True)
        self.cluster, self.target, self.every = cluster, target, every
        self.halt = threading.Event()
        self.runs: list[float] = []
        self.failures: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.halt.wait(self.every):
            n += 1
            t0 = time.monotonic()
            try:
                archive_wal(
                    WalArchiveRequest(
                        spec_name="bench",
                        component=COMPONENT,
                        policy="wal",
                        backup_id=f"20260101T{n:06d}Z-wal",
                        conn=self.cluster.conninfo(DATABASE),
                        bin_dir=self.cluster.bin_dir,
                        targets=[self.target],
                        slot=default_slot(COMPONENT),
                        retention_days=1,
                        timeout_s=120,
                    )
                )
                self.runs.append(time.monotonic() - t0)
            except Exception as exc:  # noqa: BLE001 - the run in flight when the primary dies fails
                self.failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                if not self.cluster.is_running():
                    return


def surviving_ids(port: int) -> set[int]:
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=DATABASE) as db:
        return {int(row[0]) for row in db.execute("select id from events")}


def loss(acked: list[tuple[int, datetime]], survived: set[int]) -> tuple[int, float]:
    """(transactions lost, seconds between the newest surviving and the newest acknowledged commit)."""
    lost = [ts for row_id, ts in acked if row_id not in survived]
    kept = [ts for row_id, ts in acked if row_id in survived]
    if not lost:
        return 0, 0.0
    newest_kept = max(kept) if kept else min(lost)
    return len(lost), max(0.0, (max(lost) - newest_kept).total_seconds())


def promote(replica: LocalCluster) -> float:
    t0 = time.monotonic()
    with psycopg.connect(**replica.conninfo().libpq_kwargs(), autocommit=True) as db:
        db.execute("select pg_promote(true, 60)")
    return time.monotonic() - t0


def run(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    host = LocalHost()
    bin_dir = Path(args.bin_dir)
    primary = LocalCluster(root / "primary", free_port(), root / "run", bin_dir, host)
    primary.init(no_sync=True)
    try:
        primary.start()
    except ClusterError:
        primary.port = free_port()  # free_port() can race with other processes
        primary.start()
    with psycopg.connect(**primary.conninfo().libpq_kwargs(), autocommit=True) as db:
        db.execute(f"create database {DATABASE}")
    with psycopg.connect(**primary.conninfo(DATABASE).libpq_kwargs(), autocommit=True) as db:
        db.execute("create table events (id bigserial primary key, written_at timestamptz default clock_timestamp())")
    replica = create_replica(primary, root / "replica", free_port(), "bench_replica", socket_dir=root / "run")
    target = {"name": "local", "type": "local", "path": str(root / "store")}

    writer = Writer(primary, args.rate)
    writer.start()
    time.sleep(1.0)
    take_full_backup(
        FullBackupRequest(
            spec_name="bench",
            component=COMPONENT,
            policy="daily-full",
            backup_id="20260101T000000Z-daily-full",
            conn=primary.conninfo(DATABASE),
            bin_dir=bin_dir,
            targets=[target],
            compression="zstd",
            retention_days=1,
            retention_policy="standard",
            validation=[],
        )
    )
    archiver = Archiver(primary, target, args.archive_every)
    archiver.start()
    print(f"load running at {args.rate:.0f} tx/s; killing the primary in {args.duration:.0f}s ...", flush=True)
    time.sleep(args.duration)
    primary.stop("immediate")
    killed_at = time.monotonic()
    writer.halt.set()
    archiver.halt.set()
    writer.join(30)
    archiver.join(150)
    acked = list(writer.acked)

    promote_s = promote(replica)
    lost_a = loss(acked, surviving_ids(replica.port))
    replica.stop("immediate")

    [(_, catalog)] = target_catalogs("bench", [target])
    span = recoverable_range(catalog, COMPONENT)
    if span is None:
        raise SystemExit(f"no WAL archive run completed before the kill ({archiver.failures}); raise --duration")
    plan = plan_point_in_time(catalog, COMPONENT, span.end.time)
    t0 = time.monotonic()
    restored = restore_to_point(catalog, plan, root / "restored", host=host, bin_dir=bin_dir, keep_running=True)
    restore_s = time.monotonic() - t0
    assert restored.port is not None
    try:
        lost_b = loss(acked, surviving_ids(restored.port))
    finally:
        LocalCluster(root / "restored", restored.port, root / "socket", bin_dir, host).stop("immediate")
    load_s = max(writer.stopped_at - writer.started_at, 1e-9)
    return {
        "acked": len(acked),
        "rate": len(acked) / load_s,
        "load_s": load_s,
        "writer_lag_s": max(0.0, writer.stopped_at - killed_at),
        "archive_runs": archiver.runs,
        "archive_failures": archiver.failures,
        "promote_s": promote_s,
        "restore_s": restore_s,
        "wal_entries": len(plan.wal),
        "lost_replica": lost_a,
        "lost_archive": lost_b,
    }


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    runs = result["archive_runs"]
    print(
        f"\n{result['acked']} transactions acknowledged in {result['load_s']:.1f}s ({result['rate']:.0f} tx/s); "
        f"{len(runs)} WAL archive runs (every {args.archive_every:.0f}s, each "
        f"{(sum(runs) / len(runs)) if runs else 0:.2f}s on average), {len(result['archive_failures'])} cut short by "
        "the kill"
    )
    print(f"\n{'recovery source':<42} {'lost tx':>8} {'lost s':>8}  {'recovery s':>10}")
    rows = [
        ("(a) promote the streaming replica", result["lost_replica"], result["promote_s"]),
        (
            f"(b) full backup + {result['wal_entries']} archived WAL entries",
            result["lost_archive"],
            result["restore_s"],
        ),
    ]
    for label, (lost_tx, lost_s), took in rows:
        print(f"{label:<42} {lost_tx:>8} {lost_s:>8.3f}  {took:>10.1f}")
    lost_b_s = result["lost_archive"][1]
    print(
        f"\n(b) lost {lost_b_s:.1f}s = {lost_b_s / args.archive_every:.2f} x the archive interval "
        f"(expected at most 1 x plus one archive run)"
    )
    print(f"\n{'component':<16} {'RPO':>6}  {'(a) replica':>12}  {'(b) backup + WAL':>17}")
    for component in load_spec(SPEC).spec.components:
        rpo = component.rpo.total_seconds()
        marks = ["meets" if lost_s <= rpo else "MISSES" for _, (_, lost_s), _ in rows]
        print(f"{component.name:<16} {format_duration(component.rpo):>6}  {marks[0]:>12}  {marks[1]:>17}")
    print(
        f"\nto keep a {format_duration(load_spec(SPEC).spec.component(COMPONENT).rpo)} RPO from the store alone, "
        "schedule the WAL policy at most every RPO minus one archive run."
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--archive-every", type=float, default=10.0, help="seconds between WAL archive runs (N)")
    parser.add_argument("--duration", type=float, default=None, help="seconds of load before the kill (3.5 x N)")
    parser.add_argument("--rate", type=float, default=300.0, help="target transactions per second")
    parser.add_argument("--bin-dir", default=str(find_bin_dir()))
    parser.add_argument("--keep", action="store_true", help="keep the directories (servers are stopped anyway)")
    args = parser.parse_args()
    if args.duration is None:
        args.duration = 3.5 * args.archive_every
    signal.signal(signal.SIGTERM, _terminate)
    BENCH_ROOT.mkdir(mode=0o755, exist_ok=True)
    BENCH_ROOT.chmod(0o755)  # the postgres user must traverse it
    root = BENCH_ROOT / f"rpo-{uuid.uuid4().hex[:12]}"
    root.mkdir(mode=0o755)
    print(f"RPO benchmark in {root} ({datetime.now(UTC):%Y-%m-%d %H:%M:%SZ})")
    try:
        report(run(root, args), args)
    finally:
        host = LocalHost()
        for pid_file in root.rglob("postmaster.pid"):
            host.run(
                [str(Path(args.bin_dir) / "pg_ctl"), "stop", "-D", str(pid_file.parent), "-m", "immediate", "-w"],
                as_db_user=True,
                check=False,
                timeout=60,
            )
        if args.keep:
            print(f"kept {root} (servers stopped)")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
