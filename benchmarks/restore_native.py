"""Restore against the native tools, in one run (``benchmarks/restore.py`` runs this by default).

One throwaway PostgreSQL cluster (as root it runs as postgres) archiving through pgBackRest into a posix
repository, filled with ``pgbench -i -s SCALE`` (30: about 450 MB). Backed up twice from the same data:
``pgbackrest backup --type=full`` (compress-type zst) and a drflow full backup (zstd) into a local store.
Then a pgbench write load, a target time noted in the middle of it, and drflow's WAL archive run
(pg_receivewal, as the incremental policy does). Sides, alternating each round:

  full restore   drflow restore --spec S --component db --to DIR          (fresh process, verifies sha256
                                                                           of every object + pg_verifybackup)
                 pgbackrest restore --pg1-path=DIR                        (checks every file's checksum)
                 tar -I zstd -xf base.tar.zst / pg_wal.tar.zst by hand    (the floor: no verification)
  PITR           drflow restore ... --target-time T                       (replay, promote, stop)
                 native floor: the same base tars extracted by hand, the stored WAL segments decompressed
                 with zstd by hand, recovery_target_time = T, restore_command = cp, start, replay, promote
                 (wait until writable), stop
                 floor + syncfs: the same, with recovery_init_sync_method = syncfs, as drflow starts a restored
                                 server (informational: drflow's overhead with the same startup sync)

All sides read the same local disk (pgBackRest speaks only HTTPS to S3, so moto over HTTP is out here;
``--s3`` runs the earlier S3 comparison). Targets: drflow <= 1.0x pgBackRest, PITR <= 1.2x the floor.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from backup import BENCH_ROOT, MiB, dir_bytes

from drflow.engines.postgres.cluster import ClusterError, LocalCluster, free_port
from drflow.hosts import LocalHost
from drflow.jobs.backup import FullBackupRequest, take_full_backup
from drflow.jobs.wal import WalArchiveRequest, archive_wal, default_slot
from drflow.store.factory import target_catalogs

PGBACKREST_TARGET = 1.0
PITR_TARGET = 1.2
DRFLOW = Path(sys.executable).with_name("drflow")
STANZA = "bench"
HOST = LocalHost()
PHASES: list[str] = []


def _as_db(argv: list[str], timeout: float = 3600) -> None:
    HOST.run(argv, as_db_user=True, timeout=timeout)


def _db_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    HOST.chown_to_db_user(path)
    return path


def pgbackrest_conf(root: Path, cluster: LocalCluster) -> Path:
    conf = root / "pgbackrest.conf"
    conf.write_text(
        "[global]\n"
        f"repo1-path={_db_dir(root / 'pgbr-repo')}\nrepo1-retention-full=2\ncompress-type=zst\n"
        f"log-path={_db_dir(root / 'pgbr-log')}\nlock-path={_db_dir(root / 'pgbr-lock')}\n"
        f"spool-path={_db_dir(root / 'pgbr-spool')}\nlog-level-console=warn\nlog-level-file=off\nstart-fast=y\n"
        f"[{STANZA}]\npg1-path={cluster.data_dir}\npg1-port={cluster.port}\npg1-socket-path={cluster.socket_dir}\n"
        "pg1-user=postgres\n"
    )
    conf.chmod(0o644)
    return conf


def pgbackrest(conf: Path, *args: str) -> list[str]:
    return ["pgbackrest", f"--config={conf}", f"--stanza={STANZA}", *args]


def start_cluster(root: Path, scale: int, bin_dir: Path) -> tuple[LocalCluster, Path]:
    cluster = LocalCluster(root / "data", free_port(), root / "run", bin_dir, HOST)
    cluster.init(no_sync=True, max_wal_size="4GB", archive_mode="on")
    conf = pgbackrest_conf(root, cluster)
    cluster.configure(archive_command=" ".join(pgbackrest(conf, "archive-push", "%p")))
    for attempt in range(3):
        try:
            cluster.start()
            break
        except ClusterError as exc:  # free_port() races with other processes
            if "Address already in use" not in str(exc) or attempt == 2:
                raise
            cluster.port = free_port()
            conf = pgbackrest_conf(root, cluster)
    _as_db(pgbackrest(conf, "stanza-create"))
    t0 = time.perf_counter()
    _as_db([str(bin_dir / "pgbench"), "-i", "-q", "-s", str(scale), *_pg_args(cluster)])
    _psql(cluster, "CHECKPOINT")
    print(f"cluster on port {cluster.port}: pgbench -i -s {scale} + CHECKPOINT in {time.perf_counter() - t0:.1f}s")
    return cluster, conf


def _pg_args(cluster: LocalCluster) -> list[str]:
    conn = cluster.conninfo()
    return ["-h", conn.host, "-p", str(conn.port), "-U", conn.user, conn.dbname]


def _psql(cluster: LocalCluster, sql: str) -> str:
    result = HOST.run(
        [str(cluster.bin_dir / "psql"), "-X", "-At", "-c", sql, *_pg_args(cluster)], as_db_user=True, timeout=600
    )
    return result.stdout.strip()


def write_spec(path: Path, store: Path) -> None:
    path.write_text(
        "version: 1\nmetadata: {name: bench, owner: bench}\nregions: [{name: local, role: primary}]\n"
        f"storage: [{{name: disk, type: local, path: {store}, region: local}}]\n"
        "components:\n  - {name: db, criticality: low, rto: 1h, rpo: 1d, datastore: {type: postgres, "
        "database: postgres, primary: {conn_id: unused, region: local}}, backups: [{name: full, "
        "type: full, method: pg_basebackup, schedule: '@daily', targets: [disk], retention: {days: 1}}]}\n"
    )


def timed(argv: list[str], env: dict[str, str] | None = None, *, as_db: bool = False) -> float:
    t0 = time.perf_counter()
    if as_db:
        HOST.run(argv, as_db_user=True, timeout=3600, env=env)
    else:
        result = subprocess.run(argv, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:3])} failed:\n{result.stdout}{result.stderr}")
        if "--target-time" in argv:  # drflow's own phases: where the time goes
            said = " ".join(result.stdout.split())
            PHASES.append(said.split("(fetch ", 1)[-1].split(")", 1)[0] if "(fetch " in said else "?")
    return time.perf_counter() - t0


def tar_by_hand(base: Path, out: Path) -> float:
    """The floor of a full restore: extract the two stored tars, nothing verified."""
    t0 = time.perf_counter()
    out.mkdir(mode=0o700)
    subprocess.run(["tar", "-I", "zstd", "-xf", str(base / "base.tar.zst"), "-C", str(out)], check=True)
    (out / "pg_wal").mkdir(exist_ok=True)
    subprocess.run(["tar", "-I", "zstd", "-xf", str(base / "pg_wal.tar.zst"), "-C", str(out / "pg_wal")], check=True)
    return time.perf_counter() - t0


def native_pitr(
    base: Path, wal_dirs: list[Path], out: Path, target: str, bin_dir: Path, root: Path, *, syncfs: bool = False
) -> float:
    """Base extracted by hand, WAL decompressed by hand, recovery_target_time, replay, promote, stop.

    ``syncfs``: the first start syncs the data directory as drflow's restores do (one syncfs() instead of an
    fsync per file), to show drflow's own overhead apart from that setting."""
    t0 = time.perf_counter()
    HOST.make_private_dir(out)
    _as_db(["tar", "-I", "zstd", "-xf", str(base / "base.tar.zst"), "-C", str(out)])
    _as_db(["mkdir", "-p", str(out / "pg_wal"), str(out / "walsrc")])
    _as_db(["tar", "-I", "zstd", "-xf", str(base / "pg_wal.tar.zst"), "-C", str(out / "pg_wal")])
    segments = [f for d in wal_dirs for f in sorted(d.iterdir()) if f.name.endswith(".zst")]
    _as_db(["zstd", "-d", "-q", "--output-dir-flat", str(out / "walsrc"), *map(str, segments)])
    port, sock = free_port(), HOST.make_private_dir(root / f"sock-{out.name}")
    settings = (
        f"\nrestore_command = 'cp walsrc/%f %p'\nrecovery_target_time = '{target}'\n"
        f"recovery_target_action = 'promote'\narchive_mode = 'off'\nport = {port}\n"
        f"unix_socket_directories = '{sock}'\nlisten_addresses = ''\n"
        + ("recovery_init_sync_method = 'syncfs'\n" if syncfs else "")
    )
    with (out / "postgresql.auto.conf").open("a") as conf:  # as root, owned by postgres: appended in place
        conf.write(settings)
    (out / "recovery.signal").touch()
    HOST.chown_to_db_user(out / "recovery.signal")
    pg_ctl = str(bin_dir / "pg_ctl")
    _as_db([pg_ctl, "-D", str(out), "-l", str(out / "server.log"), "-w", "-t", "3600", "start"])
    psql = [str(bin_dir / "psql"), "-X", "-At", "-h", str(sock), "-p", str(port), "-U", "postgres", "postgres"]
    while HOST.run([*psql, "-c", "select pg_is_in_recovery()"], as_db_user=True, check=False).stdout.strip() != "f":
        time.sleep(0.05)
    _as_db([pg_ctl, "-D", str(out), "-m", "fast", "-w", "stop"])
    return time.perf_counter() - t0


def summary(label: str, values: list[float]) -> str:
    return f"{label:<22} best {min(values):7.2f}s  median {statistics.median(values):7.2f}s  ({len(values)} rounds)"


def run(args: argparse.Namespace) -> int:
    if not DRFLOW.exists() or shutil.which("pgbackrest") is None:
        print("needs .venv/bin/drflow and pgbackrest (make install installs both)")
        return 1
    BENCH_ROOT.mkdir(mode=0o755, exist_ok=True)
    BENCH_ROOT.chmod(0o755)
    root = BENCH_ROOT / uuid.uuid4().hex[:12]
    root.mkdir(mode=0o755)
    bin_dir = Path(args.bin_dir)
    env = {**os.environ, "DRFLOW_WORK_DIR": str(root / "work")}
    spec, store = root / "bench.yaml", root / "store"
    target = {"name": "disk", "type": "local", "path": str(store), "region": "local"}
    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}  # CPU seconds of this process and the commands it waited for
    loads: list[float] = []  # the 1-minute load average before the first round and after each
    cluster: LocalCluster | None = None
    try:
        cluster, conf = start_cluster(root, args.scale, bin_dir)
        write_spec(spec, store)
        t0 = time.perf_counter()
        _as_db(pgbackrest(conf, "--type=full", "backup"))
        print(f"pgbackrest backup --type=full: {time.perf_counter() - t0:.1f}s")
        common = {"spec_name": "bench", "component": "db", "targets": [target], "retention_days": 1}
        t0 = time.perf_counter()
        manifest = take_full_backup(
            FullBackupRequest(
                **common,
                policy="full",
                backup_id=f"20260101T000000Z-full-{uuid.uuid4().hex[:6]}",
                conn=cluster.conninfo(),
                bin_dir=bin_dir,
                compression="zstd",
                work_dir=str(root / "work"),
            )
        )
        stored_mib = sum(o.size for o in manifest.objects) / MiB
        print(f"drflow full backup: {time.perf_counter() - t0:.1f}s, {stored_mib:.0f} MiB stored")
        slot = default_slot("db")
        # WAL: a write load, the target time in its middle, then one archive run (the incremental policy's job).
        pgbench_load = [str(bin_dir / "pgbench"), "-n", "-c", "2", "-T", str(args.load_s), *_pg_args(cluster)]
        archive_wal(
            WalArchiveRequest(
                **common,
                policy="wal",
                backup_id="20260101T000001Z-wal",
                conn=cluster.conninfo(),
                bin_dir=bin_dir,
                slot=slot,
                timeout_s=600,
            )
        )
        _as_db(pgbench_load)
        target_time = _psql(cluster, "select now()")
        _as_db(pgbench_load)
        wal = archive_wal(
            WalArchiveRequest(
                **common,
                policy="wal",
                backup_id="20260101T000002Z-wal",
                conn=cluster.conninfo(),
                bin_dir=bin_dir,
                slot=slot,
                timeout_s=600,
            )
        )
        [(_, catalog)] = target_catalogs("bench", [target])
        base_dir = store / catalog.prefix_for("db", manifest.backup_id)
        wal_dirs = [
            store / catalog.prefix_for("db", m.backup_id)
            for m in catalog.list_backups("db")
            if m.method == "pg_receivewal"
        ]
        print(f"target time {target_time}; WAL entries {len(wal_dirs)} (newest ends at {wal.end_lsn})")
        data_mib = dir_bytes(cluster.data_dir) / MiB
        HOST.run(["chmod", "-R", "a+rX", str(store)], timeout=600)  # the floor reads it as the postgres user
        cluster.stop("fast")

        def record(label: str, seconds: float) -> None:
            times.setdefault(label, []).append(seconds)
            cpu.setdefault(label, []).append(_cpu_s() - cpu_before[0])

        cpu_before = [0.0]
        loads.append(os.getloadavg()[0])

        for r in range(args.rounds):
            sides: list[Callable[[], None]] = [
                lambda r=r: record(
                    "drflow restore",
                    timed(
                        [
                            str(DRFLOW),
                            "restore",
                            "--spec",
                            str(spec),
                            "--component",
                            "db",
                            "--to",
                            str(root / f"d-{r}"),
                        ],
                        env,
                    ),
                ),
                lambda r=r: record("pgbackrest restore", _pgbackrest_restore(conf, root / f"p-{r}")),
                lambda r=r: record("tar -I zstd by hand", tar_by_hand(base_dir, root / f"t-{r}")),
                lambda r=r: record(
                    "drflow PITR",
                    timed(
                        [
                            str(DRFLOW),
                            "restore",
                            "--spec",
                            str(spec),
                            "--component",
                            "db",
                            "--to",
                            str(root / f"dp-{r}"),
                            "--target-time",
                            target_time,
                        ],
                        env,
                    ),
                ),
                lambda r=r: record(
                    "native PITR floor", native_pitr(base_dir, wal_dirs, root / f"np-{r}", target_time, bin_dir, root)
                ),
                lambda r=r: record(
                    "native floor + syncfs",
                    native_pitr(base_dir, wal_dirs, root / f"ns-{r}", target_time, bin_dir, root, syncfs=True),
                ),
            ]
            for side in sides if r % 2 == 0 else list(reversed(sides)):
                cpu_before[0] = _cpu_s()
                side()
            loads.append(os.getloadavg()[0])
            for name in ("d", "p", "t", "dp", "np", "ns"):
                HOST.run(["rm", "-rf", str(root / f"{name}-{r}")], timeout=600)
            print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    finally:
        if cluster is not None:
            cluster.stop("immediate")
        HOST.run(["rm", "-rf", str(root)], check=False, timeout=600)
    print(f"data directory {data_mib:.0f} MiB (pgbench scale {args.scale})")
    print("drflow PITR phases per round: " + "; ".join(f"fetch {p}" for p in PHASES))
    print(f"load average (1 min) before the first round and after each: {', '.join(f'{x:.1f}' for x in loads)}")
    for label, values in times.items():
        used = cpu[label]
        print(f"{summary(label, values)}  CPU best {min(used):5.2f}s median {statistics.median(used):5.2f}s")
    best = {k: min(v) for k, v in times.items()}

    def ratio(side: str, base: str) -> tuple[float, float]:
        """Best of each, and the median of the rounds' own ratios (a round's sides ran minutes apart at most,
        so under a shared machine's changing load they are the steadier figure)."""
        paired = statistics.median(a / b for a, b in zip(times[side], times[base], strict=True))
        return best[side] / best[base], paired

    vs_pgbr, pgbr_paired = ratio("drflow restore", "pgbackrest restore")
    vs_tar, tar_paired = ratio("drflow restore", "tar -I zstd by hand")
    vs_floor, floor_paired = ratio("drflow PITR", "native PITR floor")
    vs_syncfs, syncfs_paired = ratio("drflow PITR", "native floor + syncfs")
    print("ratios: best of each, then the median of the rounds' own ratios")
    print(
        f"drflow / pgbackrest restore:  {vs_pgbr:.2f}, {pgbr_paired:.2f} "
        f"(target <= {PGBACKREST_TARGET}: {_verdict(vs_pgbr, PGBACKREST_TARGET)})"
    )
    print(f"drflow / tar by hand:         {vs_tar:.2f}, {tar_paired:.2f} (the floor: no verification at all)")
    print(
        f"drflow PITR / native floor:   {vs_floor:.2f}, {floor_paired:.2f} "
        f"(target <= {PITR_TARGET}: {_verdict(vs_floor, PITR_TARGET)})"
    )
    print(
        f"drflow PITR / floor + syncfs: {vs_syncfs:.2f}, {syncfs_paired:.2f} "
        "(drflow's own overhead: both sync the restored files alike)"
    )
    print(
        "CPU (this process + the commands it waited for; a started server's own CPU is in neither), best of each: "
        + ", ".join(
            f"{a} / {b} {min(cpu[a]) / min(cpu[b]):.2f}"
            for a, b in (("drflow restore", "pgbackrest restore"), ("drflow PITR", "native PITR floor"))
        )
    )
    return 0


def _cpu_s() -> float:
    """CPU seconds of this process and of the children it has waited for (drflow's CLI, tar, pgbackrest, …)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _pgbackrest_restore(conf: Path, out: Path) -> float:
    HOST.make_private_dir(out)
    return timed(pgbackrest(conf, f"--pg1-path={out}", "--archive-mode=off", "restore"), as_db=True)


def _verdict(ratio: float, target: float) -> str:
    return "OK" if ratio <= target else "ABOVE TARGET"
