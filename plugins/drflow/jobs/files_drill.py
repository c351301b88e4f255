"""Restore drill of a files or s3-prefix component: replay the chain into scratch, compare with the backup."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from drflow.hosts import Host
from drflow.jobs.files import check_tree, restore_files
from drflow.workdir import scratch_dir


def run_files_drill(
    spec_name: str,
    component: str,
    targets: Sequence[Mapping[str, Any]],
    *,
    backup_id: str | None = None,
    host: Host | None = None,
    work_dir: str | None = None,
) -> dict[str, Any]:
    """Restore the entry (default the newest) into a scratch directory, always removed; return the measures.

    Trees: the restored tree's digest must equal the one recorded at backup time. Prefixes: the restored
    objects must be as many, and as large, as the listing recorded.
    """
    started_at = datetime.now(UTC)
    started = time.monotonic()
    skipped: list[str] = []
    with scratch_dir(work_dir, f"files-drill-{component}") as scratch:
        out = scratch / "restored"
        result = restore_files(
            spec_name, component, targets, out, backup_id=backup_id, host=host, work_dir=work_dir, say=skipped.append
        )
        manifest = result.manifest
        checked = time.monotonic()
        if manifest.method == "tar":
            problem = check_tree(out, manifest)
            check = {
                "name": "tree_digest",
                "expected": manifest.extra.get("tree_digest"),
                "expected_from": "backup",
                "actual": None if problem else manifest.extra.get("tree_digest"),
                "passed": problem is None,
                "problem": problem,
            }
        else:
            files = [p for p in out.rglob("*") if p.is_file()]
            count, size = len(files), sum(p.stat().st_size for p in files)
            expected = (manifest.extra.get("objects_listed"), manifest.extra.get("bytes_listed"))
            check = {
                "name": "objects_and_bytes",
                "expected": f"{expected[0]} objects, {expected[1]} bytes",
                "expected_from": "backup",
                "actual": f"{count} objects, {size} bytes",
                "passed": (count, size) == expected,
            }
        validated = time.monotonic()
    return {
        "backup_id": manifest.backup_id,
        "chain": result.chain,
        "storage_target": ", ".join(dict.fromkeys(str(t["name"]) for t in targets)),
        "skipped_copies": skipped,
        "backup_finished_at": manifest.finished_at.isoformat(),
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "fetch_s": round(result.fetch_s, 3),
        "lay_out_s": round(result.apply_s, 3),
        "validation_s": round(validated - checked, 3),
        "restore_s": round(validated - started, 3),
        "backup_age_s": round((started_at - manifest.finished_at).total_seconds(), 3),
        "stored_bytes": manifest.stored_bytes,
        "checks": [check],
    }
