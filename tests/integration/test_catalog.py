"""The self-describing catalog, on a local directory and on S3 (moto over HTTP)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from drflow.store.base import BackupStore
from drflow.store.catalog import BackupNotFoundError, Catalog, CatalogError, CorruptBackupError
from drflow.store.manifest import BackupManifest, StoredObject, make_backup_id

T0 = datetime(2026, 11, 27, 10, 23, tzinfo=UTC)


def take_backup(
    catalog: Catalog,
    tmp_path: Path,
    when: datetime = T0,
    component: str = "orders-db",
    policy: str = "daily-full",
    files: dict[str, bytes] | None = None,
) -> BackupManifest:
    backup_id = make_backup_id(policy, when)
    files = files if files is not None else {"base.tar": os.urandom(5000), "wal/000000010000000000000002": b"w"}
    assert catalog.begin(component, backup_id) is None
    objects = []
    for name, data in files.items():
        src = tmp_path / "src" / backup_id / name
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(data)
        objects.append(catalog.put_object(component, backup_id, name, src))
    manifest = BackupManifest(
        backup_id=backup_id,
        spec=catalog.spec,
        component=component,
        policy=policy,
        backup_type="full",
        method="pg_basebackup",
        started_at=when,
        finished_at=when + timedelta(minutes=2),
        objects=objects,
        retention_days=7,
        validation_values={"select count(*) from orders": "42"},
        targets=["primary-store"],
    )
    catalog.commit(manifest)
    return manifest


@pytest.fixture
def catalog(backup_store: BackupStore) -> Catalog:
    return Catalog(backup_store, "api-marketplace")


def test_round_trip(catalog: Catalog, tmp_path: Path) -> None:
    files = {"base.tar": os.urandom(100_000), "wal/000000010000000000000002": b"wal bytes"}
    manifest = take_backup(catalog, tmp_path, files=files)

    assert manifest.stored_bytes == 100_000 + len(b"wal bytes")
    assert manifest.duration_s == 120
    assert manifest.expires_at == manifest.finished_at + timedelta(days=7)
    assert catalog.list_backups() == [manifest]
    assert catalog.get("orders-db", manifest.backup_id) == manifest
    assert catalog.verify(manifest) == []

    stored = json.loads(catalog.store.get_bytes(catalog.manifest_key("orders-db", manifest.backup_id)))
    assert stored["format_version"] == 1
    assert stored["finished_at"] == "2026-11-27T10:25:00Z"

    paths = catalog.fetch(manifest, tmp_path / "restore")
    assert {name: p.read_bytes() for name, p in paths.items()} == files
    assert paths["wal/000000010000000000000002"] == tmp_path / "restore" / "wal" / "000000010000000000000002"


def test_a_backup_without_manifest_is_not_an_entry(catalog: Catalog, tmp_path: Path) -> None:
    src = tmp_path / "base.tar"
    src.write_bytes(b"data")
    backup_id = make_backup_id("daily-full", T0)
    obj = catalog.put_object("orders-db", backup_id, "base.tar", src)

    assert catalog.store.list_keys(catalog.prefix_for("orders-db", backup_id)) != []
    assert catalog.list_backups() == []
    assert catalog.latest("orders-db") is None
    with pytest.raises(BackupNotFoundError, match=backup_id):
        catalog.get("orders-db", backup_id)
    with pytest.raises(LookupError):
        catalog.get("orders-db", backup_id)
    assert obj == StoredObject(
        name="base.tar", size=4, sha256="3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"
    )


def test_commit_refuses_missing_or_short_objects(catalog: Catalog, tmp_path: Path) -> None:
    src = tmp_path / "base.tar"
    src.write_bytes(b"0123456789")
    backup_id = make_backup_id("daily-full", T0)
    obj = catalog.put_object("orders-db", backup_id, "base.tar", src)
    ghost = StoredObject(name="ghost.tar", size=1, sha256="0" * 64)
    base = dict(
        backup_id=backup_id,
        spec=catalog.spec,
        component="orders-db",
        policy="daily-full",
        backup_type="full",
        method="test",
        started_at=T0,
        finished_at=T0,
        retention_days=1,
    )

    with pytest.raises(CatalogError, match="ghost.tar: not stored"):
        catalog.commit(BackupManifest.model_validate({**base, "objects": [obj, ghost]}))
    catalog.store.put_bytes(catalog.object_key("orders-db", backup_id, "base.tar"), b"01234")
    with pytest.raises(CatalogError, match="base.tar: 5 bytes stored, 10 recorded"):
        catalog.commit(BackupManifest.model_validate({**base, "objects": [obj]}))
    assert not catalog.store.exists(catalog.manifest_key("orders-db", backup_id))
    assert catalog.list_backups() == []

    with pytest.raises(CatalogError, match="spec 'other'"):
        catalog.commit(BackupManifest.model_validate({**base, "spec": "other", "objects": []}))


def test_begin_clears_a_failed_try_and_returns_a_finished_one(catalog: Catalog, tmp_path: Path) -> None:
    backup_id = make_backup_id("daily-full", T0)
    prefix = catalog.prefix_for("orders-db", backup_id)
    catalog.store.put_bytes(prefix + "base.tar", b"half of a failed try")
    catalog.store.put_bytes(prefix + "wal/0001", b"more")
    neighbour = make_backup_id("daily-full", T0 + timedelta(seconds=1))
    catalog.store.put_bytes(catalog.prefix_for("orders-db", neighbour) + "base.tar", b"other")

    assert catalog.begin("orders-db", backup_id) is None
    assert catalog.store.list_keys(prefix) == []
    assert catalog.store.list_keys(catalog.prefix_for("orders-db", neighbour)) != []

    manifest = take_backup(catalog, tmp_path)
    assert manifest.backup_id == backup_id
    # A retry of the finished task gets the committed backup and leaves it alone.
    assert catalog.begin("orders-db", backup_id) == manifest
    assert catalog.verify(manifest) == []
    with pytest.raises(CatalogError, match="already committed"):
        catalog.commit(manifest)


def test_a_corrupted_object_fails_fetch_and_leaves_nothing(catalog: Catalog, tmp_path: Path) -> None:
    manifest = take_backup(catalog, tmp_path)
    key = catalog.object_key("orders-db", manifest.backup_id, "wal/000000010000000000000002")
    catalog.store.put_bytes(key, b"W")  # same size, other bytes: bit rot
    expected = manifest.object_named("wal/000000010000000000000002").sha256

    dest = tmp_path / "restore"
    dest.mkdir()
    with pytest.raises(CorruptBackupError) as exc_info:
        catalog.fetch(manifest, dest)
    message = str(exc_info.value)
    assert catalog.store.url_for(key) in message
    assert expected in message
    assert exc_info.value.actual_sha256 is not None
    assert exc_info.value.actual_sha256 in message
    assert "--backup" in message
    assert list(dest.iterdir()) == []

    problems = catalog.verify(manifest)
    assert len(problems) == 1
    assert key in problems[0]

    fresh = tmp_path / "fresh" / "restore"
    with pytest.raises(CorruptBackupError):
        catalog.fetch(manifest, fresh)
    assert not fresh.exists()


def test_a_missing_object_fails_fetch(catalog: Catalog, tmp_path: Path) -> None:
    manifest = take_backup(catalog, tmp_path)
    key = catalog.object_key("orders-db", manifest.backup_id, "base.tar")
    catalog.store.delete(key)
    dest = tmp_path / "restore"
    dest.mkdir()
    with pytest.raises(CorruptBackupError, match="is missing"):
        catalog.fetch(manifest, dest)
    assert list(dest.iterdir()) == []
    assert catalog.verify(manifest) == [f"{catalog.store.url_for(key)}: missing"]


def test_list_backups_oldest_first_and_latest(catalog: Catalog, tmp_path: Path) -> None:
    small = {"f": b"x"}
    middle = take_backup(catalog, tmp_path, when=T0, files=small)
    newest = take_backup(catalog, tmp_path, when=T0 + timedelta(days=1), files=small)
    oldest = take_backup(catalog, tmp_path, when=T0 - timedelta(days=1), files=small)
    weekly = take_backup(catalog, tmp_path, when=T0 - timedelta(hours=1), policy="weekly-full", files=small)
    other = take_backup(catalog, tmp_path, when=T0, component="users-db", files=small)
    # A spec whose name extends this one's must not leak in.
    take_backup(Catalog(catalog.store, catalog.spec + "-v2"), tmp_path, files=small)

    assert catalog.list_backups("orders-db") == [oldest, weekly, middle, newest]
    assert catalog.list_backups() == [oldest, weekly, middle, other, newest]
    assert catalog.latest("orders-db") == newest
    assert catalog.latest("orders-db", policy="weekly-full") == weekly
    assert catalog.latest("orders-db", policy="hourly") is None

    assert catalog.discard("orders-db", newest.backup_id) == 2
    assert catalog.latest("orders-db") == middle
    assert catalog.store.list_keys(catalog.prefix_for("orders-db", newest.backup_id)) == []


def test_an_unreadable_manifest_is_an_error_naming_it(catalog: Catalog, tmp_path: Path) -> None:
    take_backup(catalog, tmp_path)
    bad_id = make_backup_id("daily-full", T0 + timedelta(hours=1))
    key = catalog.manifest_key("orders-db", bad_id)
    catalog.store.put_bytes(key, b"{not json")
    with pytest.raises(CatalogError, match="unreadable backup manifest") as exc_info:
        catalog.list_backups()
    assert catalog.store.url_for(key) in str(exc_info.value)

    catalog.store.put_bytes(key, json.dumps({"format_version": 2}).encode())
    with pytest.raises(CatalogError, match="format_version 2, newer"):
        catalog.get("orders-db", bad_id)


def test_reports_round_trip(catalog: Catalog) -> None:
    first = catalog.write_report("orders-db", "drill", "20261127T1023Z-restore", {"ok": True, "at": T0})
    catalog.write_report("orders-db", "drill", "20261128T1023Z-restore", {"ok": False, "rto_s": 12.5})
    catalog.write_report("orders-db", "restore", "20261128T1023Z", {"ok": True})

    assert first == "api-marketplace/orders-db/reports/drill/20261127T1023Z-restore.json"
    assert catalog.read_reports("orders-db", "drill") == [
        {"ok": True, "at": "2026-11-27T10:23:00+00:00"},
        {"ok": False, "rto_s": 12.5},
    ]
    assert catalog.read_reports("users-db", "drill") == []
    assert catalog.list_backups() == []


def test_make_backup_id() -> None:
    assert make_backup_id("daily-full", T0) == "20261127T102300Z-daily-full"
    cet = datetime(2026, 11, 27, 11, 23, tzinfo=timezone(timedelta(hours=1)))
    assert make_backup_id("daily-full", cet) == "20261127T102300Z-daily-full"
    ids = [make_backup_id("p", T0 + timedelta(hours=h)) for h in (30, 0, 5)]
    assert sorted(ids) == [make_backup_id("p", T0 + timedelta(hours=h)) for h in (0, 5, 30)]
    with pytest.raises(ValueError, match="timezone-aware"):
        make_backup_id("daily-full", datetime(2026, 11, 27))
    with pytest.raises(ValueError, match="invalid backup policy name"):
        make_backup_id("daily/full", T0)


def test_manifest_model_rejects_inconsistent_data() -> None:
    base = dict(
        backup_id="b1",
        spec="s",
        component="c",
        policy="p",
        backup_type="full",
        method="m",
        started_at=T0,
        finished_at=T0,
        retention_days=1,
    )
    BackupManifest.model_validate(base)
    obj = {"name": "f", "size": 1, "sha256": "a" * 64}
    for bad in (
        {"finished_at": T0 - timedelta(seconds=1)},
        {"started_at": datetime(2026, 1, 1)},
        {"backup_type": "weekly"},
        {"component": "../etc"},
        {"objects": [obj, obj]},
        {"objects": [{**obj, "name": "manifest.json"}]},
        {"objects": [{**obj, "name": "../f"}]},
        {"objects": [{**obj, "sha256": "xyz"}]},
        {"unknown_field": 1},
    ):
        with pytest.raises(ValidationError):
            BackupManifest.model_validate({**base, **bad})
