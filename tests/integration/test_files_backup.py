"""File-storage backups for real: GNU tar + zstd on a directory tree, an S3 prefix on a moto server over HTTP.

A tree is changed across full → incremental → incremental → differential (added, changed, deleted,
renamed files, a symlink, an empty directory, modes and owners) and every entry must restore to exactly
the tree it saw; a missing link is reported as a gap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, create_buckets
from drflow.engines.files.digest import tree_digest
from drflow.jobs.drill import drill_verdict
from drflow.jobs.files import FilesBackupRequest, check_tree, restore_files, take_files_backup
from drflow.jobs.files_chain import FilesChainError, gaps, gather
from drflow.jobs.files_drill import run_files_drill
from drflow.jobs.rpo import component_compliance
from drflow.store.catalog import Catalog
from drflow.store.factory import open_store
from drflow.store.manifest import BackupManifest, make_backup_id
from tests.fixtures.s3 import MotoServer
from tests.plan_inputs import files_component, rpo_component, spec_head

SPEC = "files-test"
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _request(
    targets: list[dict[str, Any]], datastore: dict[str, Any], level: str, hour: int, work: Path
) -> FilesBackupRequest:
    policy = "daily-full" if level == "full" else f"hourly-{level[:4]}"
    return FilesBackupRequest(
        spec_name=SPEC,
        component="portal-assets",
        policy=policy,
        backup_id=make_backup_id(policy, T0 + timedelta(hours=hour)),
        targets=targets,
        retention_days=7,
        level=level,  # type: ignore[arg-type]
        datastore=datastore,
        work_dir=str(work),
    )


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _same_tree(a: Path, b: Path) -> None:
    assert tree_digest(a, content=True) == tree_digest(b, content=True)
    diff = subprocess.run(["diff", "-r", "--no-dereference", str(a), str(b)], capture_output=True, text=True)
    assert diff.returncode == 0, diff.stdout + diff.stderr


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "assets"
    _write(src / "index.html", "<h1>portal</h1>")
    _write(src / "img" / "logo.svg", "<svg/>" * 100)
    _write(src / "docs" / "guide.md", "# guide\n" * 50, 0o640)
    _write(src / "docs" / "old.md", "old")
    (src / "cache").mkdir()
    return src


def test_tree_chain_restores_exactly_at_every_point(tree: Path, tmp_path: Path) -> None:
    targets = [{"name": "local-a", "type": "local", "path": str(tmp_path / "store-a")}]
    ds = {"type": "files", "path": str(tree)}
    work = tmp_path / "work"
    snaps = tmp_path / "snaps"
    taken: list[BackupManifest] = []

    def backup(level: str, hour: int) -> None:
        taken.append(take_files_backup(_request(targets, ds, level, hour, work)))
        subprocess.run(["cp", "-a", str(tree), str(snaps / taken[-1].backup_id)], check=True)

    snaps.mkdir()
    backup("full", 0)
    _write(tree / "new.txt", "added after the full")  # added
    _write(tree / "index.html", "<h1>portal v2</h1>")  # changed
    (tree / "docs" / "old.md").unlink()  # deleted
    (tree / "empty" / "nested").mkdir(parents=True)  # empty directory
    if os.geteuid() == 0:
        os.chown(tree / "img" / "logo.svg", 1, 1)  # owner kept when root
    backup("incremental", 1)
    (tree / "docs" / "guide.md").rename(tree / "docs" / "handbook.md")  # renamed
    (tree / "latest").symlink_to("docs/handbook.md")  # symlink
    (tree / "new.txt").chmod(0o600)  # mode only
    shutil.rmtree(tree / "cache")
    backup("incremental", 2)
    _write(tree / "img" / "banner.png", "png" * 1000)
    (tree / "new.txt").unlink()
    backup("differential", 3)

    assert [m.backup_type for m in taken] == ["full", "incremental", "incremental", "differential"]
    assert taken[1].parent_id == taken[0].backup_id and taken[2].parent_id == taken[1].backup_id
    assert taken[3].parent_id == taken[0].backup_id  # since the last full
    assert {o.name for o in taken[2].objects} == {"tree.tar.zst", "tree.snar"}
    for manifest in taken:
        out = tmp_path / "restored" / manifest.backup_id
        result = restore_files(SPEC, "portal-assets", targets, out, backup_id=manifest.backup_id, work_dir=str(work))
        assert result.digest_ok is True
        assert result.chain[0] == taken[0].backup_id
        _same_tree(out, snaps / manifest.backup_id)
        assert check_tree(out, manifest) is None
    assert not (tmp_path / "restored" / taken[3].backup_id / "docs" / "guide.md").exists()
    assert not (tmp_path / "restored" / taken[3].backup_id / "cache").exists()
    # --at picks the newest entry finished by then
    at = restore_files(SPEC, "portal-assets", targets, tmp_path / "at", at=taken[1].finished_at, work_dir=str(work))
    assert at.manifest.backup_id == taken[1].backup_id


def test_missing_link_is_a_gap_and_the_next_backup_starts_a_new_chain(tree: Path, tmp_path: Path) -> None:
    targets = [{"name": "local-a", "type": "local", "path": str(tmp_path / "store-a")}]
    ds = {"type": "files", "path": str(tree)}
    work = tmp_path / "work"
    full = take_files_backup(_request(targets, ds, "full", 0, work))
    _write(tree / "a.txt", "a")
    first = take_files_backup(_request(targets, ds, "incremental", 1, work))
    _write(tree / "b.txt", "b")
    second = take_files_backup(_request(targets, ds, "incremental", 2, work))
    catalog = Catalog(open_store(targets[0]), SPEC)
    catalog.discard("portal-assets", first.backup_id)

    with pytest.raises(FilesChainError, match=f"gap in the chain of backup {second.backup_id}") as caught:
        restore_files(SPEC, "portal-assets", targets, tmp_path / "out", backup_id=second.backup_id, work_dir=str(work))
    assert first.backup_id in str(caught.value) and "take a full backup" in str(caught.value)
    assert not (tmp_path / "out").exists()  # nothing left behind
    found = gaps(gather([("local-a", catalog)], "portal-assets"))
    assert len(found) == 1 and second.backup_id in found[0]
    # the full still restores; the next incremental cannot build on the broken chain and is taken as a full
    restore_files(SPEC, "portal-assets", targets, tmp_path / "full", backup_id=full.backup_id, work_dir=str(work))
    third = take_files_backup(_request(targets, ds, "incremental", 3, work))
    assert third.backup_type == "full" and "taken as a full" in third.extra["promoted"]
    out = tmp_path / "third"
    restore_files(SPEC, "portal-assets", targets, out, backup_id=third.backup_id, work_dir=str(work))
    _same_tree(out, tree)


def test_a_link_missing_in_one_target_is_read_from_another(tree: Path, tmp_path: Path) -> None:
    targets = [
        {"name": "local-a", "type": "local", "path": str(tmp_path / "store-a")},
        {"name": "local-b", "type": "local", "path": str(tmp_path / "store-b")},
    ]
    ds = {"type": "files", "path": str(tree)}
    work = tmp_path / "work"
    full = take_files_backup(_request(targets, ds, "full", 0, work))
    # The archive is hashed while tar writes it, copied into local-a and renamed into local-b: both copies
    # hold exactly the bytes the manifest records, and no staged file is left.
    for target in targets:
        assert Catalog(open_store(target), SPEC).verify(full) == []
    assert not any(p.is_file() for p in work.rglob("*"))
    _write(tree / "a.txt", "a")
    inc = take_files_backup(_request(targets, ds, "incremental", 1, work))
    Catalog(open_store(targets[0]), SPEC).discard("portal-assets", inc.parent_id or "")
    out = tmp_path / "out"
    assert restore_files(SPEC, "portal-assets", targets, out, work_dir=str(work)).digest_ok is True
    _same_tree(out, tree)


def _client(server: MotoServer) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_s3_prefix_chain_copies_changed_objects_and_restores_each_point(
    moto_server: MotoServer, s3_conn_id: str, s3_bucket: str, s3_target: dict[str, Any], tmp_path: Path
) -> None:
    source_bucket = f"{s3_bucket}-src"
    create_buckets(moto_server.endpoint_url, [source_bucket], moto_server.region)
    client = _client(moto_server)
    put = lambda key, body: client.put_object(Bucket=source_bucket, Key=f"assets/{key}", Body=body.encode())  # noqa: E731
    put("a.txt", "a1")
    put("img/b.png", "b1")
    put("img/c.png", "c1")
    client.put_object(Bucket=source_bucket, Key="other/not-mine.txt", Body=b"x")
    ds = {
        "type": "s3-prefix",
        "bucket": source_bucket,
        "prefix": "assets",
        "conn_id": s3_conn_id,
        "region": "us-east-1",
    }
    targets = [s3_target, {"name": "local-a", "type": "local", "path": str(tmp_path / "store")}]
    work = tmp_path / "work"
    expected: dict[str, dict[str, str]] = {}

    full = take_files_backup(_request(targets, ds, "full", 0, work))
    expected[full.backup_id] = {"a.txt": "a1", "img/b.png": "b1", "img/c.png": "c1"}
    put("a.txt", "a2")
    client.delete_object(Bucket=source_bucket, Key="assets/img/c.png")
    put("d.txt", "d1")
    inc = take_files_backup(_request(targets, ds, "incremental", 1, work))
    expected[inc.backup_id] = {"a.txt": "a2", "img/b.png": "b1", "d.txt": "d1"}
    put("img/b.png", "b2")
    diff = take_files_backup(_request(targets, ds, "differential", 2, work))
    expected[diff.backup_id] = {"a.txt": "a2", "img/b.png": "b2", "d.txt": "d1"}

    assert full.extra["objects_copied"] == 3 and inc.extra["objects_copied"] == 2
    assert diff.parent_id == full.backup_id and diff.extra["objects_copied"] == 3  # a, b, d changed since the full
    for backup_id, files in expected.items():
        out = tmp_path / "restored" / backup_id
        restore_files(SPEC, "portal-assets", targets, out, backup_id=backup_id, work_dir=str(work))
        assert _files(out) == files


def test_cli_restore_replays_the_chain_without_airflow(tree: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nmetadata: {{name: {SPEC}, owner: web}}\nregions: [{{name: eu, role: primary}}]\n"
        f"storage: [{{name: vault, type: local, path: {store}}}]\n"
        "components:\n  - {name: portal-assets, criticality: high, rto: 2h, rpo: 1h, "
        f"datastore: {{type: files, path: {tree}}}, "
        "backups: [{preset: files, targets: [vault], retention: {days: 7}}]}\n"
    )
    targets = [{"name": "vault", "type": "local", "path": str(store)}]
    work = tmp_path / "work"
    full = take_files_backup(_request(targets, {"type": "files", "path": str(tree)}, "full", 0, work))
    snapshot = tmp_path / "at-full"
    subprocess.run(["cp", "-a", str(tree), str(snapshot)], check=True)
    (tree / "index.html").unlink()
    inc = take_files_backup(_request(targets, {"type": "files", "path": str(tree)}, "incremental", 1, work))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        run = [sys.executable, "-X", "importtime", "-m", "drflow.cli", "restore", "--spec", str(spec)]
        env = {**os.environ, "DRFLOW_WORK_DIR": str(work)}
        return subprocess.run([*run, "--component", "portal-assets", *args], env=env, capture_output=True, text=True)

    latest = cli("--to", str(tmp_path / "latest"))
    assert latest.returncode == 0, latest.stderr[-2000:]
    assert f"{full.backup_id} → {inc.backup_id}" in latest.stdout and "tree digest equal" in latest.stdout
    assert "import time:" in latest.stderr and " airflow" not in latest.stderr  # no Airflow imported
    _same_tree(tmp_path / "latest", tree)
    by_time = cli("--to", str(tmp_path / "by-time"), "--at", full.finished_at.isoformat())
    assert by_time.returncode == 0, by_time.stderr[-2000:]
    _same_tree(tmp_path / "by-time", snapshot)
    missing = cli("--to", str(tmp_path / "none"), "--backup", "20200101T000000Z-nope")
    assert missing.returncode != 0 and "no file backup '20200101T000000Z-nope'" in missing.stderr
    assert inc.backup_id in missing.stderr and "Traceback" not in missing.stderr


def test_files_drill_passes_on_a_sound_chain_and_fails_when_the_tree_differs(tree: Path, tmp_path: Path) -> None:
    targets = [{"name": "local-a", "type": "local", "path": str(tmp_path / "store-a")}]
    ds = {"type": "files", "path": str(tree)}
    work = tmp_path / "work"
    take_files_backup(_request(targets, ds, "full", 0, work))
    _write(tree / "a.txt", "a")
    inc = take_files_backup(_request(targets, ds, "incremental", 1, work))

    result = run_files_drill(SPEC, "portal-assets", targets, work_dir=str(work))
    verdict = drill_verdict(result, rto_s=3600, rpo_s=10**9)
    assert verdict["passed"], verdict["problems"]
    assert result["backup_id"] == inc.backup_id and len(result["chain"]) == 2
    assert not list((work).glob("*/restored"))  # the scratch directory is gone

    # A manifest whose recorded tree is not what the chain gives: the drill fails, naming the digests.
    catalog = Catalog(open_store(targets[0]), SPEC)
    manifest_key = catalog.manifest_key("portal-assets", inc.backup_id)
    tampered = inc.model_copy(update={"extra": {**inc.extra, "tree_digest": "0" * 64}})
    catalog.store.put_bytes(manifest_key, tampered.model_dump_json().encode())
    failed = drill_verdict(run_files_drill(SPEC, "portal-assets", targets, work_dir=str(work)), 3600, 10**9)
    assert not failed["passed"] and "tree_digest" in failed["problems"][0]
    assert "0" * 64 in str(failed["checks"][0]["problem"])


def test_rpo_compliance_counts_the_newest_restorable_file_backup(tree: Path, tmp_path: Path) -> None:
    targets = [{"name": "local-a", "type": "local", "path": str(tmp_path / "store-a")}]
    ds = {"type": "files", "path": str(tree)}
    work = tmp_path / "work"
    take_files_backup(_request(targets, ds, "full", 0, work))
    first = take_files_backup(_request(targets, ds, "incremental", 1, work))
    second = take_files_backup(_request(targets, ds, "incremental", 2, work))
    spec = {**spec_head(SPEC, targets), "components": [files_component("portal-assets", tree, targets, rpo="1h")]}
    component = rpo_component(spec, "portal-assets")
    now = second.finished_at + timedelta(minutes=10)
    report = component_compliance(SPEC, component, now)
    assert report["compliant"] and report["best_source"] == "files:local-a"
    assert report["achievable_rpo_s"] == pytest.approx(600, abs=1)

    Catalog(open_store(targets[0]), SPEC).discard("portal-assets", first.backup_id)  # a gap cuts `second` off
    report = component_compliance(SPEC, component, now)
    assert report["sources"][0]["backup_id"].endswith("daily-full")  # the full is the newest whole chain
    assert any("gap in the chain" in p for p in report["problems"])
