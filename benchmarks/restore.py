"""Restore benchmark. By default: `drflow restore` against `pgbackrest restore` and `tar -I zstd -xf` by hand,
and a point-in-time restore against a native floor, all in one run (see ``restore_native.py``;
``--scale 30 --rounds 3 --load-s 20`` by default). With ``--s3``, the earlier comparison below.

``--s3``: `drflow restore` (the CLI, start-up included) against the same restore done by hand.

Creates a throwaway PostgreSQL 15 cluster under /var/tmp/drflow-bench (as root it runs as postgres), fills
it with ``pgbench -i -s SCALE`` (scale 15 is about 230 MB) plus ``--random-mib`` MiB of incompressible
bytes (default 200, so the stored backup is about the 229 MiB of the issue's measurement: pgbench data alone
compresses 20:1 and leaves Python's start-up as most of the work), starts a moto S3 server on a free loopback port
and takes one drflow full backup into a bucket there (zstd). Then alternates:

  by hand  download every object of the backup (boto3, a client made beforehand), tar -I zstd -xf base.tar.zst,
           tar -I zstd -xf pg_wal.tar.zst into pg_wal, copy backup_manifest, pg_verifybackup
  drflow   .venv/bin/drflow restore --spec S --component db --to DIR   (a fresh process: Python start-up,
           imports, spec, catalog, sha256 of every object, lay-out and pg_verifybackup as the db user)

``--rounds`` rounds (the order flips every round), best and median of each side and the ratio
drflow/by-hand (target <= 1.3) on the wall clock, and on CPU time (process + children), which other load
disturbs less. Everything is removed at the end, even on failure.
Usage: .venv/bin/python benchmarks/restore.py [--scale 30] [--rounds 3] [--load-s 20]
       .venv/bin/python benchmarks/restore.py --s3 [--scale 15] [--random-mib 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from backup import BENCH_ROOT, MiB, bench_cluster, dir_bytes

from drflow.connections import read_without_airflow
from drflow.devtools.sandbox.s3 import aws_conn_uri_json, create_buckets, start_moto_server, stop_moto_server
from drflow.engines.postgres.bindir import find_bin_dir
from drflow.engines.postgres.cluster import LocalCluster, free_port
from drflow.jobs.backup import FullBackupRequest, take_full_backup, target_catalogs
from drflow.store.catalog import Catalog
from drflow.store.manifest import BackupManifest

TARGET_RATIO = 1.3
CONN_ID = "bench_s3"
BUCKET = "drflow-bench-restore"
DRFLOW = Path(sys.executable).with_name("drflow")


def fill_random(cluster: LocalCluster, mib: int) -> None:
    """``mib`` rows of 1 MiB random bytes, stored uncompressed (TOAST would only try and fail)."""
    import psycopg

    with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute("CREATE TABLE noise (id int PRIMARY KEY, b bytea)")
        conn.execute("ALTER TABLE noise ALTER COLUMN b SET STORAGE EXTERNAL")
        with conn.cursor().copy("COPY noise (id, b) FROM STDIN") as copy:
            for i in range(mib):
                copy.write_row((i, os.urandom(MiB)))
        conn.execute("CHECKPOINT")


def write_spec(path: Path, endpoint_region: str) -> None:
    path.write_text(
        "version: 1\nmetadata: {name: bench, owner: bench}\n"
        f"regions: [{{name: {endpoint_region}, role: primary}}]\n"
        f"storage: [{{name: s3, type: s3, bucket: {BUCKET}, conn_id: {CONN_ID}, region: {endpoint_region}}}]\n"
        "components:\n  - {name: db, criticality: low, rto: 1h, rpo: 1d, datastore: {type: postgres, "
        f"database: postgres, primary: {{conn_id: unused, region: {endpoint_region}}}}}, backups: [{{name: full, "
        "type: full, method: pg_basebackup, schedule: '@daily', targets: [s3], retention: {days: 1}}]}\n"
    )


def _cpu() -> float:
    """CPU seconds of this process and of every child it has waited for (their children included)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def by_hand(catalog: Catalog, manifest: BackupManifest, out: Path, bin_dir: Path) -> tuple[float, float]:
    client = catalog.store.client  # type: ignore[attr-defined]  # made before timing, as an open shell would be
    bucket = catalog.store.bucket  # type: ignore[attr-defined]
    keys = {o.name: catalog.object_key(manifest.component, manifest.backup_id, o.name) for o in manifest.objects}
    download = out.with_name(out.name + "-download")
    t0, cpu0 = time.perf_counter(), _cpu()
    download.mkdir()
    for name, key in keys.items():
        client.download_file(Bucket=bucket, Key=key, Filename=str(download / name))
    out.mkdir(mode=0o700)
    subprocess.run(["tar", "-I", "zstd", "-xf", str(download / "base.tar.zst"), "-C", str(out)], check=True)
    (out / "pg_wal").mkdir(exist_ok=True)
    subprocess.run(
        ["tar", "-I", "zstd", "-xf", str(download / "pg_wal.tar.zst"), "-C", str(out / "pg_wal")], check=True
    )
    shutil.copy(download / "backup_manifest", out / "backup_manifest")
    subprocess.run([str(bin_dir / "pg_verifybackup"), "-q", str(out)], check=True)
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    shutil.rmtree(download)
    shutil.rmtree(out)
    return seconds, cpu


def with_drflow(spec: Path, out: Path, env: dict[str, str]) -> tuple[float, float, str]:
    t0, cpu0 = time.perf_counter(), _cpu()
    result = subprocess.run(
        [str(DRFLOW), "restore", "--spec", str(spec), "--component", "db", "--to", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    if result.returncode != 0:
        raise SystemExit(f"drflow restore failed:\n{result.stdout}{result.stderr}")
    shutil.rmtree(out)
    return seconds, cpu, result.stdout.strip()


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def summary(label: str, values: list[float]) -> str:
    return f"{label:<8} best {min(values):7.2f}s  median {statistics.median(values):7.2f}s  ({len(values)} rounds)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--s3", action="store_true", help="the S3 comparison: drflow restore against by hand")
    parser.add_argument("--scale", type=int, default=None, help="pgbench scale (default 30; 15 with --s3)")
    parser.add_argument("--random-mib", type=int, default=200, help="--s3: MiB of incompressible data (200)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of each side, alternating (3; 5 with --s3)")
    parser.add_argument("--load-s", type=int, default=20, help="seconds of pgbench writes on each side of the target")
    parser.add_argument("--bin-dir", type=Path, default=find_bin_dir(), help="PostgreSQL binaries")
    args = parser.parse_args()
    args.scale = args.scale or (15 if args.s3 else 30)
    args.rounds = args.rounds or (5 if args.s3 else 3)
    if args.rounds < 1 or args.scale < 1:
        parser.error("--rounds and --scale must be at least 1")
    signal.signal(signal.SIGTERM, _terminate)
    if not args.s3:
        from restore_native import run

        return run(args)
    if not DRFLOW.exists():
        print(f"{DRFLOW} is missing: run this with the project's venv (.venv/bin/python benchmarks/restore.py)")
        return 1
    read_without_airflow()  # this process reads the store as the CLI does

    BENCH_ROOT.mkdir(mode=0o755, exist_ok=True)
    BENCH_ROOT.chmod(0o755)  # the postgres user must traverse it
    root = BENCH_ROOT / uuid.uuid4().hex[:12]
    root.mkdir(mode=0o755)
    region = "us-east-1"
    port = free_port()
    moto_pid = start_moto_server(port, root / "moto.log")
    endpoint = f"http://127.0.0.1:{port}"
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = aws_conn_uri_json(endpoint, region)
    env = {**os.environ, "DRFLOW_WORK_DIR": str(root / "work")}
    hand_s: list[float] = []
    drflow_s: list[float] = []
    hand_cpu: list[float] = []
    drflow_cpu: list[float] = []
    try:
        create_buckets(endpoint, [BUCKET], region)
        spec = root / "bench.yaml"
        write_spec(spec, region)
        target = {"name": "s3", "type": "s3", "bucket": BUCKET, "conn_id": CONN_ID, "region": region}
        with bench_cluster(root, args.scale, args.bin_dir, keep=False) as cluster:
            if args.random_mib > 0:
                fill_random(cluster, args.random_mib)
            request = FullBackupRequest(
                spec_name="bench",
                component="db",
                policy="full",
                backup_id=f"bench-{uuid.uuid4().hex[:6]}",
                conn=cluster.conninfo(),
                bin_dir=cluster.bin_dir,
                targets=[target],
                compression="zstd",
                retention_days=1,
                retention_policy="standard",
                validation=[],
                work_dir=str(root / "work"),
            )
            manifest = take_full_backup(request)
            stored = sum(o.size for o in manifest.objects)
            [(_, catalog)] = target_catalogs("bench", [target])
            print(
                f"backup {manifest.backup_id}: {(manifest.database_size_bytes or 0) / MiB:.0f} MiB of data, "
                f"{stored / MiB:.1f} MiB in S3 (moto on {endpoint})"
            )
            for r in range(args.rounds):

                def hand(r: int = r) -> None:
                    seconds, cpu = by_hand(catalog, manifest, root / f"hand-{r}", args.bin_dir)
                    hand_s.append(seconds)
                    hand_cpu.append(cpu)
                    print(f"round {r}: by hand {seconds:6.2f}s wall {cpu:6.2f}s CPU")

                def ours(r: int = r) -> None:
                    seconds, cpu, said = with_drflow(spec, root / f"drflow-{r}", env)
                    drflow_s.append(seconds)
                    drflow_cpu.append(cpu)
                    print(
                        f"round {r}: drflow  {seconds:6.2f}s wall {cpu:6.2f}s CPU ({said.split('(')[-1].rstrip(')')})"
                    )

                sides: list[Callable[[], None]] = [hand, ours] if r % 2 == 0 else [ours, hand]
                for side in sides:
                    side()
            size = dir_bytes(cluster.data_dir)
    finally:
        stop_moto_server(moto_pid)
        shutil.rmtree(root, ignore_errors=True)

    print(f"data directory {size / MiB:.0f} MiB")
    print(summary("by hand", hand_s))
    print(summary("drflow", drflow_s))
    ratio = min(drflow_s) / min(hand_s)
    median_ratio = statistics.median(drflow_s) / statistics.median(hand_s)
    verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"ratio drflow/by hand: {ratio:.2f} best, {median_ratio:.2f} median (target <= {TARGET_RATIO}: {verdict})")
    cpu_ratio = min(drflow_cpu) / min(hand_cpu)
    print(
        f"CPU (this process + children, less disturbed by other load): by hand best {min(hand_cpu):.2f}s, "
        f"drflow best {min(drflow_cpu):.2f}s, ratio {cpu_ratio:.2f}"
    )
    print(json.dumps({"by_hand_s": hand_s, "drflow_s": drflow_s, "ratio_best": round(ratio, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
