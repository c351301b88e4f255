"""Backup benchmark: drflow's full backup into a local store against a plain pg_basebackup.

Creates a throwaway PostgreSQL 15 cluster under /var/tmp/drflow-bench (as root it runs as postgres),
fills it with ``pgbench -i -s SCALE`` (scale 30 is about 450 MB), CHECKPOINTs, then alternates:

  plain   pg_basebackup -D DIR -Ft -X stream --compress=client-zstd -c fast   into a fresh directory
  drflow  drflow.jobs.backup.take_full_backup(...)   zstd, one local target, no validation queries

``--rounds`` rounds (the order flips every round), best and median of each, the ratio drflow/plain
(target <= 1.3) and where drflow's time goes: its functions are wrapped with timers in this process
only (pg_basebackup, the zstd pass over pg_wal.tar, sha256, the copy into the store, fsync).
The cluster is stopped (-m immediate) and every directory removed at the end, even on failure,
unless --keep is given.
Usage: .venv/bin/python benchmarks/backup.py [--scale 30] [--rounds 4] [--keep]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from drflow.engines.postgres import basebackup
from drflow.engines.postgres.bindir import find_bin_dir
from drflow.engines.postgres.cluster import ClusterError, LocalCluster, free_port
from drflow.hosts import LocalHost
from drflow.jobs.backup import FullBackupRequest, take_full_backup
from drflow.store import catalog, local
from drflow.store.catalog import Catalog

BENCH_ROOT = Path("/var/tmp/drflow-bench")
TARGET_RATIO = 1.3
MiB = 1024 * 1024


# -- phase timers (this process only) ---------------------------------------


class PhaseTimer:
    """Wraps module functions with accumulating timers; ``restore()`` puts the originals back."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._patched: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - t0

        setattr(owner, name, timed)
        self._patched.append((owner, name, original))

    def take(self) -> dict[str, float]:
        taken = dict(self.seconds)
        self.seconds.clear()
        return taken

    def restore(self) -> None:
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)
        self._patched.clear()


PHASES = (
    # (owner, function, label); nested phases are listed under the phase they are part of.
    (basebackup, "_server_info", "server info query"),
    (basebackup, "_run_client", "pg_basebackup"),
    (basebackup, "_zstd_wal_archive", "zstd pass over pg_wal.tar"),
    (basebackup, "_result", "read backup_manifest"),
    (catalog, "_hash_file", "sha256 of staged files"),
    (local.LocalStore, "put_file", "store put_file (copy+fsync+rename)"),
    (local, "_fsync_file", "  of which fsync of the copies"),
    (Catalog, "begin", "catalog begin"),
    (Catalog, "commit", "catalog commit (manifest)"),
)


# -- the cluster -------------------------------------------------------------


@contextmanager
def bench_cluster(root: Path, scale: int, bin_dir: Path, keep: bool) -> Iterator[LocalCluster]:
    host = LocalHost()
    cluster = LocalCluster(
        data_dir=root / "data", port=free_port(), socket_dir=root / "run", bin_dir=bin_dir, host=host
    )
    try:
        t0 = time.perf_counter()
        cluster.init(no_sync=True, max_wal_size="4GB")
        for attempt in range(3):
            try:
                cluster.start()
                break
            except ClusterError as exc:  # free_port() races with other processes
                if "Address already in use" not in str(exc) or attempt == 2:
                    raise
                cluster.port = free_port()
        conn = cluster.conninfo()
        pgbench = [str(bin_dir / "pgbench"), "-i", "-q", "-s", str(scale), "-h", conn.host, "-p", str(conn.port)]
        host.run([*pgbench, "-U", conn.user, conn.dbname], as_db_user=True, timeout=3600)
        host.run(
            [str(bin_dir / "psql"), "-X", "-h", conn.host, "-p", str(conn.port), "-U", conn.user, "-c", "CHECKPOINT"],
            as_db_user=True,
            timeout=600,
        )
        print(
            f"cluster on port {cluster.port}: initdb + pgbench -i -s {scale} + CHECKPOINT in "
            f"{time.perf_counter() - t0:.1f}s"
        )
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        finally:
            if keep:
                print(f"kept {root} (cluster stopped)")
            else:
                shutil.rmtree(root, ignore_errors=True)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- one round of each side ----------------------------------------------------


def plain_backup(cluster: LocalCluster, out: Path) -> tuple[float, int]:
    conn = cluster.conninfo()
    argv = [
        str(cluster.bin_dir / "pg_basebackup"),
        "-D",
        str(out),
        "-Ft",
        "-X",
        "stream",
        "--compress=client-zstd",
        "-c",
        "fast",
        "--no-password",
        "-d",
        conn.dsn(),
    ]
    t0 = time.perf_counter()
    subprocess.run(argv, env={**os.environ, **conn.env()}, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    size = dir_bytes(out)
    shutil.rmtree(out)
    return seconds, size


def drflow_backup(cluster: LocalCluster, root: Path, round_no: int) -> tuple[float, int, int]:
    store = root / "store"
    request = FullBackupRequest(
        spec_name="bench",
        component="db",
        policy="bench",
        backup_id=f"bench-{round_no:02d}-{uuid.uuid4().hex[:6]}",
        conn=cluster.conninfo(),
        bin_dir=cluster.bin_dir,
        targets=[{"name": "bench", "type": "local", "path": str(store)}],
        compression="zstd",
        retention_days=1,
        retention_policy="standard",
        validation=[],
        work_dir=str(root / "work"),
    )
    t0 = time.perf_counter()
    manifest = take_full_backup(request)
    seconds = time.perf_counter() - t0
    shutil.rmtree(store)
    return seconds, manifest.stored_bytes, manifest.database_size_bytes or 0


# -- driver --------------------------------------------------------------------


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def summary(label: str, values: list[float]) -> str:
    return f"{label:<8} best {min(values):7.2f}s  median {statistics.median(values):7.2f}s  ({len(values)} rounds)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=30, help="pgbench scale factor (30: about 450 MB)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of each side, alternating (4)")
    parser.add_argument("--keep", action="store_true", help="leave the stopped cluster and its directory")
    parser.add_argument("--bin-dir", type=Path, default=find_bin_dir(), help="PostgreSQL binaries")
    args = parser.parse_args()
    if args.rounds < 1 or args.scale < 1:
        parser.error("--rounds and --scale must be at least 1")
    if shutil.which("zstd") is None:
        print("zstd is not on PATH: drflow would leave pg_wal.tar uncompressed; install zstd first")
        return 1
    signal.signal(signal.SIGTERM, _terminate)

    BENCH_ROOT.mkdir(mode=0o755, exist_ok=True)
    BENCH_ROOT.chmod(0o755)  # the postgres user must traverse it
    root = BENCH_ROOT / uuid.uuid4().hex[:12]
    root.mkdir(mode=0o755)

    timer = PhaseTimer()
    for owner, name, label in PHASES:
        timer.wrap(owner, name, label)
    plain_s: list[float] = []
    drflow_s: list[float] = []
    phases: list[dict[str, float]] = []
    sizes: dict[str, int] = {}
    try:
        with bench_cluster(root, args.scale, args.bin_dir, args.keep) as cluster:
            for r in range(args.rounds):

                def plain(r: int = r) -> None:
                    seconds, sizes["plain"] = plain_backup(cluster, root / f"plain-{r}")
                    plain_s.append(seconds)
                    print(f"round {r}: plain  {seconds:6.2f}s")

                def ours(r: int = r) -> None:
                    timer.take()
                    seconds, sizes["drflow"], sizes["data"] = drflow_backup(cluster, root, r)
                    drflow_s.append(seconds)
                    phases.append({**timer.take(), "total": seconds})
                    inner = phases[-1].get("pg_basebackup", 0.0)
                    print(f"round {r}: drflow {seconds:6.2f}s  (pg_basebackup {inner:.2f}s + {seconds - inner:.2f}s)")

                sides: list[Callable[[], None]] = [plain, ours] if r % 2 == 0 else [ours, plain]
                for side in sides:
                    side()
    finally:
        timer.restore()

    print(
        f"data {sizes['data'] / MiB:.0f} MiB (backup manifest); stored: plain {sizes['plain'] / MiB:.1f} MiB "
        f"(pg_wal.tar uncompressed), drflow {sizes['drflow'] / MiB:.1f} MiB"
    )
    print(summary("plain", plain_s))
    print(summary("drflow", drflow_s))
    ratio = min(drflow_s) / min(plain_s)
    median_ratio = statistics.median(drflow_s) / statistics.median(plain_s)
    verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"ratio drflow/plain: {ratio:.2f} best, {median_ratio:.2f} median (target <= {TARGET_RATIO}: {verdict})")

    overheads = [p["total"] - p.get("pg_basebackup", 0.0) for p in phases]
    overhead = statistics.median(overheads)
    print(
        f"drflow beyond its own pg_basebackup run: median {overhead:.2f}s, best {min(overheads):.2f}s "
        f"-> less noisy estimate (plain best + median overhead) / plain best = "
        f"{(min(plain_s) + overhead) / min(plain_s):.2f}"
    )
    best = min(phases, key=lambda p: p["total"])
    print(f"drflow's best round, {best['total']:.2f}s:")
    accounted = 0.0
    for _, _, label in PHASES:
        seconds = best.get(label, 0.0)
        if not label.startswith(" "):
            accounted += seconds
        print(f"  {label:<36} {seconds:6.2f}s  {seconds / best['total']:5.1%}")
    other = best["total"] - accounted
    print(f"  {'other (staging dir, cleanup, Python)':<36} {other:6.2f}s  {other / best['total']:5.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
