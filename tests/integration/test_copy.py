"""Copies as their own job: verified entries copied from the primary-region target into a secondary-region
bucket (moto over HTTP), every checksum checked at the destination, the copy lag recorded and counted by RPO
compliance; a failed destination never blocks another and never touches the source copies."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drflow.contracts import RpoComponent
from drflow.jobs.copy import copy_backups
from drflow.jobs.rpo import component_compliance
from drflow.store.catalog import Catalog
from drflow.store.factory import target_catalogs
from drflow.store.manifest import BackupManifest, make_backup_id
from tests.fixtures.pg import PG_BIN_DIR
from tests.integration.test_catalog import T0
from tests.plan_inputs import postgres_component, rpo_component, spec_head


def take_backup(catalog: Catalog, tmp_path: Path, when: datetime, policy: str = "daily-full") -> BackupManifest:
    """A committed base backup (an end LSN: RPO counts it) of two objects."""
    backup_id = make_backup_id(policy, when)
    assert catalog.begin("orders-db", backup_id) is None
    objects = []
    for name, data in {"base.tar": os.urandom(3000), "backup_manifest": b"{}"}.items():
        src = tmp_path / backup_id / name
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(data)
        objects.append(catalog.put_object("orders-db", backup_id, name, src))
    manifest = BackupManifest(
        backup_id=backup_id,
        spec=catalog.spec,
        component="orders-db",
        policy=policy,
        backup_type="full",
        method="pg_basebackup",
        started_at=when - timedelta(minutes=2),
        finished_at=when,
        end_lsn="0/3000000",
        objects=objects,
        retention_days=7,
    )
    catalog.commit(manifest)
    return manifest


SPEC = "copy-spec"


def _component(source: dict[str, Any], destination: dict[str, Any]) -> RpoComponent:
    """orders-db (RPO 1h) backed up into ``source`` and copied to ``destination``, as the RPO report's builder
    writes it."""
    component = postgres_component("orders-db", "orders", PG_BIN_DIR, [source], rpo="1h")
    [policy] = component["backups"]
    policy["copy_to"] = [destination["name"]]
    return rpo_component({**spec_head(SPEC, [source, destination]), "components": [component]}, "orders-db")


def test_new_entries_are_copied_verified_and_their_lag_counts_in_rpo(
    local_target: dict[str, Any], s3_target: dict[str, Any], tmp_path: Path
) -> None:
    [(_, source)] = target_catalogs(SPEC, [local_target])
    first = take_backup(source, tmp_path, when=T0)
    second = take_backup(source, tmp_path, when=T0 + timedelta(minutes=40))
    take_backup(source, tmp_path, when=T0 + timedelta(minutes=50), policy="other-policy")
    now = T0 + timedelta(minutes=55)

    before = component_compliance(SPEC, _component(local_target, s3_target), now)
    assert before["compliant"], before  # the primary's copy is fresh …
    assert any(f"copy target {s3_target['name']} holds no backup yet" in p for p in before["problems"])  # … not this

    result = copy_backups(SPEC, "orders-db", "daily-full", [local_target], [s3_target], now=now)
    assert result.failed == {}
    copied = result.copied[s3_target["name"]]
    assert [c["backup_id"] for c in copied] == [first.backup_id, second.backup_id]
    assert all(c["lag_s"] > 0 and c["from"] == local_target["name"] for c in copied)

    [(_, destination)] = target_catalogs(SPEC, [s3_target])
    assert [m.backup_id for m in destination.list_backups("orders-db")] == [first.backup_id, second.backup_id]
    for manifest in destination.list_backups("orders-db"):
        assert destination.verify(manifest) == []
        assert manifest.objects == source.get("orders-db", manifest.backup_id).objects
    [report] = destination.read_reports("orders-db", "copy")
    assert [c["backup_id"] for c in report["copied"]] == [first.backup_id, second.backup_id]

    after = component_compliance(SPEC, _component(local_target, s3_target), now)
    assert not any("copy target" in p for p in after["problems"])
    assert {s["source"] for s in after["sources"]} == {f"backup:{local_target['name']}", f"backup:{s3_target['name']}"}
    later = component_compliance(SPEC, _component(local_target, s3_target), T0 + timedelta(hours=3))
    assert any(f"copy target {s3_target['name']} lags" in p for p in later["problems"])

    again = copy_backups(SPEC, "orders-db", "daily-full", [local_target], [s3_target])
    assert again.copied == {s3_target["name"]: []} and again.failed == {}  # nothing new: nothing copied


def test_a_failed_destination_never_blocks_another_nor_touches_the_source(
    local_target: dict[str, Any], s3_target: dict[str, Any], tmp_path: Path
) -> None:
    [(_, source)] = target_catalogs(SPEC, [local_target])
    manifest = take_backup(source, tmp_path, when=T0.astimezone(UTC))
    source_keys = source.store.list_keys("")
    broken = {**s3_target, "name": "gone", "bucket": "drflow-no-such-bucket"}
    result = copy_backups(SPEC, "orders-db", "daily-full", [local_target], [broken, s3_target])
    assert set(result.failed) == {"gone"} and "does not exist" in result.failed["gone"]
    assert [c["backup_id"] for c in result.copied[s3_target["name"]]] == [manifest.backup_id]
    assert source.store.list_keys("") == source_keys and source.verify(manifest) == []
