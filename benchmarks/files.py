"""File-storage benchmark: drflow's tree backups and restores against plain GNU tar + zstd, in the same run.

Generates a tree of about 20,000 files / 500 MB (``--scale`` shrinks or grows both; half of every file is
random bytes, half text, so zstd has real work) under /var/tmp/drflow-bench-files-<pid>, and a local
directory store next to it. Then, over ``--rounds`` rounds (order flipped every round):

  full        drflow full backup (tar --listed-incremental + zstd, tree digest in a thread, sha256 of the
              stored objects, manifest)  vs  tar -I zstd -cf of the same tree            (target <= 1.1x)
  incremental drflow incremental after 1 % of the files changed, against drflow's full   (target <= 10 %)
  restore     drflow restore of the full (fetch with sha256, tar -x, digest compared)
              vs  tar -I zstd -xf of the plain archive                                   (target <= 1.1x)

and, for the same guarantees done by hand: full-checked (tar, sha256sum, copy into a store directory,
sync), restore-checked (sha256sum, then tar -xf); full-archive is drflow's archive step alone (tar -g with
the tree digest in a thread: the manifest's duration) against plain tar.

Prints best and median (wall clock) of each side, the ratios and the absolutes; everything is removed at
the end, even on failure.
Usage: .venv/bin/python benchmarks/files.py [--scale 1.0] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drflow.jobs.files import FilesBackupRequest, restore_files, take_files_backup
from drflow.store.manifest import make_backup_id

MiB = 1024 * 1024
FILES, TOTAL_BYTES = 20_000, 500 * 10**6
SPEC, COMPONENT = "bench-files", "assets"
TARGETS = {
    "full": 1.1,
    "full-archive": 1.1,
    "full-checked": 1.1,
    "incremental": 0.10,
    "restore": 1.1,
    "restore-checked": 1.1,
}


def make_tree(root: Path, files: int, total: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    average = total // files
    words = b"portal asset catalogue gateway analytics billing user " * 64
    for i in range(files):
        directory = root / f"d{i % 100:02d}" / f"s{(i // 100) % 20:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        size = rng.randint(average // 2, average * 3 // 2)
        half = size // 2
        text = (words * (half // len(words) + 1))[:half]
        (directory / f"f{i:05d}.bin").write_bytes(os.urandom(size - half) + text)
    (root / "empty-dir").mkdir()
    (root / "latest").symlink_to("d00/s00/f00000.bin")


def change_files(root: Path, share: float, seed: int) -> int:
    paths = sorted(root.rglob("*.bin"))
    rng = random.Random(seed)
    chosen = rng.sample(paths, max(1, int(len(paths) * share)))
    for path in chosen:
        path.write_bytes(os.urandom(path.stat().st_size))
    return len(chosen)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def plain_tar(tree: Path, archive: Path) -> None:
    subprocess.run(["tar", "-I", "zstd", "-cf", str(archive), "-C", str(tree), "."], check=True)


def checked_tar(tree: Path, archive: Path, store: Path) -> None:
    """What a script does for the same guarantees: archive, sha256, copy into the store, flush it to disk."""
    plain_tar(tree, archive)
    subprocess.run(["sha256sum", str(archive)], check=True, capture_output=True)
    shutil.copyfile(archive, store / archive.name)
    subprocess.run(["sync", "--data", str(store / archive.name)], check=True)


def checked_untar(archive: Path, dest: Path) -> None:
    """sha256 of the archive before anything is written, then the extraction."""
    subprocess.run(["sha256sum", str(archive)], check=True, capture_output=True)
    plain_untar(archive, dest)


def plain_untar(archive: Path, dest: Path) -> None:
    dest.mkdir()
    subprocess.run(["tar", "-I", "zstd", "-xf", str(archive), "-C", str(dest)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 20,000 files, 500 MB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(f"/var/tmp/drflow-bench-files-{os.getpid()}")
    try:
        results = run(root, args.scale, args.rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"tree: {results['files']} files, {results['tree_mb']:.0f} MB; {args.rounds} rounds (wall clock, s)")
    for name, row in results["measures"].items():
        verdict = "OK" if row["ratio"] <= TARGETS[name] else "ABOVE TARGET"
        print(
            f"  {name:<15} drflow best {row['drflow_best']:.2f} median {row['drflow_median']:.2f} | "
            f"{row['baseline']} best {row['base_best']:.2f} median {row['base_median']:.2f} | "
            f"ratio {row['ratio']:.2f} (target <= {TARGETS[name]}) {verdict}"
        )


def run(root: Path, scale: float, rounds: int) -> dict[str, object]:
    tree, store, work, scratch = root / "tree", root / "store", root / "work", root / "scratch"
    for path in (tree, store, work, scratch):
        path.mkdir(parents=True)
    files = max(100, int(FILES * scale))
    make_tree(tree, files, int(TOTAL_BYTES * scale))
    targets = [{"name": "bench", "type": "local", "path": str(store)}]
    datastore = {"type": "files", "path": str(tree)}
    when = datetime(2026, 12, 1, tzinfo=UTC)

    def request(level: str, n: int) -> FilesBackupRequest:
        policy = f"{level}-{n}"
        return FilesBackupRequest(
            spec_name=SPEC,
            component=COMPONENT,
            policy=policy,
            backup_id=make_backup_id(policy, when + timedelta(minutes=n)),
            targets=targets,
            retention_days=1,
            level=level,  # type: ignore[arg-type]
            datastore=datastore,
            work_dir=str(work),
        )

    full_ids: list[str] = []
    drflow_full: list[float] = []
    archive_step: list[float] = []
    plain_full: list[float] = []
    checked_full: list[float] = []
    plain_store = root / "plain-store"
    plain_store.mkdir()

    def drflow_backup(n: int) -> None:
        manifest = take_files_backup(request("full", n))
        full_ids.append(manifest.backup_id)
        archive_step.append(manifest.duration_s)

    for n in range(rounds):
        archive = scratch / f"plain-{n}.tar.zst"
        steps = [
            lambda n=n: drflow_full.append(timed(lambda: drflow_backup(n))),
            lambda archive=archive: plain_full.append(timed(lambda: plain_tar(tree, archive))),
            lambda n=n: checked_full.append(timed(lambda: checked_tar(tree, scratch / f"c-{n}.tar.zst", plain_store))),
        ]
        for step in steps if n % 2 == 0 else reversed(steps):
            step()
    plain_archive = scratch / "plain-0.tar.zst"
    drflow_restore: list[float] = []
    plain_restore: list[float] = []
    checked_restore: list[float] = []
    for n in range(rounds):
        steps = [
            lambda n=n: drflow_restore.append(
                timed(
                    lambda: restore_files(
                        SPEC, COMPONENT, targets, scratch / f"r-drflow-{n}", backup_id=full_ids[-1], work_dir=str(work)
                    )
                )
            ),
            lambda n=n: plain_restore.append(timed(lambda: plain_untar(plain_archive, scratch / f"r-plain-{n}"))),
            lambda n=n: checked_restore.append(timed(lambda: checked_untar(plain_archive, scratch / f"r-check-{n}"))),
        ]
        for step in steps if n % 2 == 0 else reversed(steps):
            step()
        shutil.rmtree(scratch / f"r-drflow-{n}")
        shutil.rmtree(scratch / f"r-plain-{n}")
        shutil.rmtree(scratch / f"r-check-{n}")
    incremental: list[float] = []
    for n in range(rounds):
        change_files(tree, 0.01, seed=100 + n)
        incremental.append(timed(lambda n=n: take_files_backup(request("incremental", 100 + n))))
    return {
        "files": files,
        "tree_mb": sum(p.stat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink()) / 10**6,
        "full_archive_mb": plain_archive.stat().st_size / 10**6,
        "measures": {
            "full": _row(drflow_full, plain_full, "tar -I zstd -cf"),
            "full-archive": _row(archive_step, plain_full, "tar -I zstd -cf"),
            "full-checked": _row(drflow_full, checked_full, "tar + sha256sum + cp + sync"),
            "incremental": _row(incremental, drflow_full, "drflow full"),
            "restore": _row(drflow_restore, plain_restore, "tar -I zstd -xf"),
            "restore-checked": _row(drflow_restore, checked_restore, "sha256sum + tar -xf"),
        },
    }


def _row(drflow: list[float], base: list[float], baseline: str) -> dict[str, object]:
    return {
        "baseline": baseline,
        "drflow_best": min(drflow),
        "drflow_median": statistics.median(drflow),
        "base_best": min(base),
        "base_median": statistics.median(base),
        "ratio": min(drflow) / min(base),
    }


if __name__ == "__main__":
    main()
