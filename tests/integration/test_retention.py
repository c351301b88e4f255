"""Retention enforced on real backups: fulls and WAL of a live PostgreSQL in moto S3 (over HTTP) and a local
directory, expired by `drflow expire` with a later `--now`. The backups are real; only the clock is moved."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from drflow.cli import app
from drflow.devtools.sandbox.s3 import create_buckets
from drflow.engines.postgres.cluster import LocalCluster
from drflow.hosts import Host
from drflow.jobs.backup import take_full_backup
from drflow.jobs.pitr import plan_point_in_time, restore_to_point
from drflow.jobs.retention import expire_component
from drflow.jobs.wal import archive_wal
from drflow.store.catalog import Catalog
from drflow.store.expiry import PolicyRules
from drflow.store.factory import target_catalogs
from drflow.store.manifest import BackupManifest
from drflow.store.wal import check_chain, recovery_point
from tests.fixtures.pg import pg_workdir_context, running_cluster
from tests.fixtures.s3 import S3_TEST_PREFIX, S3_TEST_REGION, MotoServer
from tests.integration.test_wal_pitr import (
    COMPONENT,
    SPEC,
    Writer,
    _create_users_db,
    _restored_ids,
    full_request,
    wal_request,
)

pytestmark = pytest.mark.slow

RULES = {"daily-full": PolicyRules(days=1, min_copies=2), "hourly-wal": PolicyRules(days=1)}


@dataclass
class Chain:
    primary: LocalCluster
    workdir: Path
    targets: list[dict[str, Any]]
    fulls: list[BackupManifest]
    wal: list[BackupManifest]
    commits: list[tuple[int, datetime]]
    spec: Path

    def catalogs(self) -> list[tuple[str, Catalog]]:
        return target_catalogs(SPEC, self.targets)

    def ids(self, catalog: Catalog) -> set[str]:
        return {m.backup_id for m in catalog.list_backups(COMPONENT)}


def _spec(path: Path, chain_targets: list[dict[str, Any]], bin_dir: Path) -> Path:
    s3, local = chain_targets
    path.write_text(
        f"version: 1\nmetadata: {{name: {SPEC}, owner: ops}}\nregions: [{{name: {S3_TEST_REGION}, role: primary}}]\n"
        f"storage:\n  - {{name: s3, type: s3, bucket: {s3['bucket']}, conn_id: {s3['conn_id']}, "
        f"region: {S3_TEST_REGION}, prefix: {S3_TEST_PREFIX}}}\n"
        f"  - {{name: local, type: local, path: {local['path']}}}\n"
        "components:\n  - name: users\n    criticality: high\n    rto: 1h\n    rpo: 5m\n"
        f"    datastore: {{type: postgres, database: users, bin_dir: {bin_dir}, "
        f"primary: {{conn_id: pg, region: {S3_TEST_REGION}}}}}\n"
        "    backups: [{preset: database, targets: [s3, local], retention: {days: 1, min_copies: 2}}]\n"
    )
    return path


@pytest.fixture(scope="module")
def chain(
    pg_host: Host,
    pg_bin_dir: Path,
    moto_server: MotoServer,
    s3_conn_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Chain]:
    """Three fulls with WAL after each, taken while a writer commits continuously, in S3 and a directory."""
    bucket = f"drflow-retention-{uuid.uuid4().hex[:12]}"
    create_buckets(moto_server.endpoint_url, [bucket], moto_server.region)
    root = tmp_path_factory.mktemp("retention")
    targets = [
        {
            "name": "s3",
            "type": "s3",
            "bucket": bucket,
            "conn_id": s3_conn_id,
            "region": S3_TEST_REGION,
            "prefix": S3_TEST_PREFIX,
        },
        {"name": "local", "type": "local", "path": str(root / "store")},
    ]
    with (
        pg_workdir_context(pg_host, pg_bin_dir) as workdir,
        running_cluster(workdir, "primary", pg_host, pg_bin_dir) as primary,
    ):
        primary.configure(track_commit_timestamp=True)
        primary.stop()
        primary.start()
        _create_users_db(primary)
        writer = Writer(primary.conninfo(COMPONENT))
        writer.start()
        fulls, wal = [], []
        try:
            for n in range(3):
                time.sleep(0.3)
                request = full_request(primary, targets, f"2026120{n + 1}T020000Z-daily-full-aaaaaa")
                fulls.append(take_full_backup(replace(request, retention_days=1)))
                time.sleep(0.6)
                request_wal = wal_request(primary, targets, f"2026120{n + 1}T030000Z-hourly-wal-aaaaaa")
                wal.append(archive_wal(replace(request_wal, policy="hourly-wal", retention_days=1)))
        finally:
            writer.stop()
        with psycopg.connect(**primary.conninfo(COMPONENT).libpq_kwargs()) as db:
            rows = db.execute("select id, pg_xact_commit_timestamp(xmin) from events order by 2, 1").fetchall()
        spec = _spec(root / "spec.yaml", targets, primary.bin_dir)
        yield Chain(primary, workdir, targets, fulls, wal, [(int(i), ts) for i, ts in rows], spec)


def test_expiry_keeps_min_copies_a_pin_and_every_retained_restore_point(chain: Chain, pg_host: Host) -> None:
    f1, f2, f3 = (m.backup_id for m in chain.fulls)
    w1, w2, w3 = (m.backup_id for m in chain.wal)
    everything = {f1, f2, f3, w1, w2, w3}
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()  # every backup is now older than its 1 day
    runner = CliRunner()
    args = ["expire", "--spec", str(chain.spec), "--now", later]

    pinned = runner.invoke(
        app, ["backups", "pin", f1, "--spec", str(chain.spec), "--reason", "audit 17", "--by", "ana"]
    )
    assert pinned.exit_code == 0, pinned.output
    assert f"pinned {f1} of users in s3: pinned by ana" in pinned.output and "in local" in pinned.output

    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    for target in ("s3", "local"):
        where = f"users in {target}"
        assert (
            f"{where}: would delete {w1}: WAL before the oldest kept full backup {f2}: nothing can replay it" in lines
        )
        assert f"{where}: keep {f3}: newest valid full backup of policy daily-full" in lines
        assert f"{where}: keep {f2}: one of the 2 newest valid full backups of policy daily-full (min_copies)" in lines
        assert any(line.startswith(f"{where}: keep {f1}: pinned by ana at ") and "audit 17" in line for line in lines)
        assert f"{where}: keep {w2}: WAL needed to replay from kept full backup {f2}" in lines
    assert sum("would delete" in line for line in lines) == 2
    assert all(chain.ids(catalog) == everything for _, catalog in chain.catalogs())  # a dry run deletes nothing

    # One target down (a bucket that does not exist) neither blocks nor widens expiry in the others.
    broken = {**chain.targets[0], "name": "gone", "bucket": f"drflow-missing-{uuid.uuid4().hex[:8]}"}
    now = datetime.fromisoformat(later)
    result = expire_component(SPEC, COMPONENT, [chain.targets[0], broken, chain.targets[1]], RULES, now, dry_run=False)
    assert [t.target for t in result.targets if t.error] == ["gone"]
    assert [[row["backup_id"] for row in t.deleted] for t in result.targets] == [[w1], [], [w1]]
    for _, catalog in chain.catalogs():
        assert chain.ids(catalog) == everything - {w1}
        assert not catalog.store.list_keys(catalog.prefix_for(COMPONENT, w1))  # manifest and data gone
        assert catalog.verify(chain.fulls[0]) == []  # the pinned full is whole
        assert check_chain(catalog.list_backups(COMPONENT), COMPONENT)["coverage"] == [
            (chain.wal[1].start_lsn, chain.wal[2].end_lsn)
        ]

    again = runner.invoke(app, [*args, "--json"])
    assert again.exit_code == 0, again.output
    report = json.loads(again.output)
    assert [t["delete"] for t in report[0]["targets"]] == [[], []]

    # PITR to a point just after the oldest retained base still works from what is left in S3.
    [(_, s3)] = [(name, catalog) for name, catalog in chain.catalogs() if name == "s3"]
    start, end = recovery_point(chain.fulls[1]), recovery_point(chain.wal[1])
    assert start is not None and end is not None
    pairs = [
        (a, b)
        for a, b in zip(chain.commits, chain.commits[1:], strict=False)
        if start.time < a[1] and b[1] < end.time and b[1] - a[1] > timedelta(microseconds=2)
    ]
    assert pairs, "the writer should have committed between the second full backup and its WAL"
    (last_id, last_commit), (next_id, next_commit) = pairs[0]
    point = last_commit + (next_commit - last_commit) / 2
    plan = plan_point_in_time(s3, COMPONENT, point)
    assert plan.base.backup_id == f2
    data_dir = chain.workdir / "pitr-after-expiry"
    restored = restore_to_point(s3, plan, data_dir, host=pg_host, bin_dir=chain.primary.bin_dir)
    assert restored.port is not None
    try:
        ids = _restored_ids(restored.port)
    finally:
        LocalCluster(data_dir, restored.port, data_dir.parent / "socket", chain.primary.bin_dir, pg_host).stop()
    assert ids == {row_id for row_id, committed in chain.commits if committed <= point}
    assert last_id in ids and next_id not in ids

    # Unpinned, the first full goes at the next expiry; min_copies still holds two fulls.
    unpinned = runner.invoke(app, ["backups", "unpin", f1, "--spec", str(chain.spec), "--reason", "audit closed"])
    assert unpinned.exit_code == 0 and f"unpinned {f1} of users in s3" in unpinned.output, unpinned.output
    gone = runner.invoke(app, args)
    assert gone.exit_code == 0, gone.output
    assert f"users in s3: deleted {f1}: older than 1 days" in gone.output
    for _, catalog in chain.catalogs():
        assert chain.ids(catalog) == {f2, f3, w2, w3}
        history = catalog.read_reports(COMPONENT, "pins")
        assert [(h["action"], h["reason"]) for h in history] == [("pin", "audit 17"), ("unpin", "audit closed")]
