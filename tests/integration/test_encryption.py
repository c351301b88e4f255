"""Encrypted backups: client-side AES-256-GCM on any target, SSE-S3/SSE-KMS on S3 (moto over HTTP), and a
real PostgreSQL full backup restored with the right key and refused with the wrong one."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from drflow.engines.postgres.cluster import LocalCluster
from drflow.hosts import Host
from drflow.jobs.backup import take_full_backup
from drflow.jobs.restore import restore_backup, start_scratch_instance
from drflow.store.catalog import Catalog, CatalogError
from drflow.store.encrypted import DecryptionError, EncryptedStore
from drflow.store.factory import open_store, target_catalogs
from drflow.store.keys import EncryptionKeyError
from tests.fixtures.backups import full_backup_request
from tests.fixtures.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, MotoServer
from tests.integration.test_catalog import take_backup

KEY_VARIABLE = "drflow_test_backup_key"


def _new_key(monkeypatch: pytest.MonkeyPatch) -> bytes:
    key = os.urandom(32)
    monkeypatch.setenv(f"AIRFLOW_VAR_{KEY_VARIABLE.upper()}", base64.b64encode(key).decode())
    return key


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> Iterator[bytes]:
    yield _new_key(monkeypatch)


def _encrypted(target: dict[str, Any]) -> dict[str, Any]:
    return {**target, "client_encryption": {"key_variable": KEY_VARIABLE}}


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_objects_are_stored_encrypted_and_the_manifest_names_the_key_only(
    kind: str, key: bytes, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    target = _encrypted(request.getfixturevalue(f"{kind}_target"))
    store = open_store(target)
    assert isinstance(store, EncryptedStore)
    catalog = Catalog(store, "enc-spec")
    secret = b"card 4111-1111-1111-1111 " * 400
    manifest = take_backup(catalog, tmp_path, files={"base.tar": secret, "small": b"x"})

    raw = store.inner
    stored = raw.get_bytes(catalog.object_key(manifest.component, manifest.backup_id, "base.tar"))
    assert b"4111-1111" not in stored and len(stored) > len(secret)
    on_disk = raw.get_bytes(catalog.manifest_key(manifest.component, manifest.backup_id))
    assert base64.b64encode(key) not in on_disk and key.hex().encode() not in on_disk
    recorded = catalog.get(manifest.component, manifest.backup_id)
    assert [(r.layer, r.algorithm) for r in recorded.encryption] == [("client", "AES-256-GCM")]
    assert (recorded.client_key_id() or "").startswith(f"variable:{KEY_VARIABLE}#")

    files = catalog.fetch(recorded, tmp_path / "out")
    assert files["base.tar"].read_bytes() == secret
    assert catalog.verify(recorded) == []


def test_the_wrong_key_is_refused_before_anything_is_read_or_written(
    key: bytes, local_target: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = _encrypted(local_target)
    manifest = take_backup(Catalog(open_store(target), "enc-spec"), tmp_path)
    _new_key(monkeypatch)  # the variable now holds another key
    catalog = Catalog(open_store(target), "enc-spec")
    recorded = catalog.get(manifest.component, manifest.backup_id)
    with pytest.raises(CatalogError, match="encrypted with key variable:.*another key.*nothing was read or written"):
        catalog.fetch(recorded, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # Even without the manifest's record (an object read on its own), the header names the wrong key.
    with pytest.raises(DecryptionError, match="another key"):
        catalog.store.get_bytes(catalog.object_key(manifest.component, manifest.backup_id, "base.tar"))


def test_an_encrypted_backup_read_through_a_target_without_the_key_says_what_to_add(
    key: bytes, local_target: dict[str, Any], tmp_path: Path
) -> None:
    manifest = take_backup(Catalog(open_store(_encrypted(local_target)), "enc-spec"), tmp_path)
    plain = Catalog(open_store(local_target), "enc-spec")
    with pytest.raises(CatalogError, match="add client_encryption"):
        plain.fetch(plain.get(manifest.component, manifest.backup_id), tmp_path / "out")


def test_a_missing_key_is_a_clear_error(local_target: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(f"AIRFLOW_VAR_{KEY_VARIABLE.upper()}", raising=False)
    store = open_store(_encrypted(local_target))
    with pytest.raises(EncryptionKeyError, match=f"{KEY_VARIABLE}.*(set it in Airflow|export)"):
        store.put_bytes("s/c/backups/20261127T000000Z-p/x", b"data")


def test_sse_kms_and_sse_s3_are_set_on_every_object_and_recorded(
    moto_server: MotoServer, s3_target: dict[str, Any], tmp_path: Path
) -> None:
    kms = boto3.client(
        "kms",
        endpoint_url=moto_server.endpoint_url,
        region_name=moto_server.region,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )
    key_id = kms.create_key(Description="drflow test")["KeyMetadata"]["KeyId"]
    for sse, kms_key in (("aws:kms", key_id), ("AES256", None)):
        target = {**s3_target, "server_side_encryption": sse, "kms_key_id": kms_key, "prefix": sse.replace(":", "-")}
        [(_, catalog)] = target_catalogs("enc-spec", [target])
        manifest = take_backup(catalog, tmp_path / sse.replace(":", "-"), files={"big": os.urandom(9 * 2**20)})
        store = catalog.store
        client = store.client  # type: ignore[attr-defined]
        for name in ("big", "manifest.json"):
            full = f"{target['prefix']}/{catalog.prefix_for(manifest.component, manifest.backup_id)}{name}"
            head = client.head_object(Bucket=target["bucket"], Key=full)
            assert head["ServerSideEncryption"] == sse, name
            if kms_key:
                assert key_id in head["SSEKMSKeyId"], name
        recorded = catalog.get(manifest.component, manifest.backup_id)
        assert [(r.layer, r.algorithm, r.key_id) for r in recorded.encryption] == [("server", sse, kms_key)]
        assert catalog.verify(recorded) == []


@pytest.mark.slow
def test_an_encrypted_full_backup_restores_with_the_right_key_and_refuses_the_wrong_one(
    pg_primary: LocalCluster,
    pg_workdir: Path,
    pg_host: Host,
    s3_target: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    key: bytes,
) -> None:
    target = _encrypted(s3_target)
    with psycopg.connect(**pg_primary.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute("create table secrets as select g as id, 'secret-' || g as v from generate_series(1, 5000) g")
    manifest = take_full_backup(
        full_backup_request(
            pg_primary, [target], "20261127T000000Z-daily-full", spec_name="enc-spec", compression="none"
        )
    )
    [(_, catalog)] = target_catalogs("enc-spec", [target])
    raw = catalog.store.inner  # type: ignore[attr-defined]
    base = raw.get_bytes(catalog.object_key("users", manifest.backup_id, "base.tar"))
    assert b"secret-4999" not in base

    original_key = os.environ[f"AIRFLOW_VAR_{KEY_VARIABLE.upper()}"]
    _new_key(monkeypatch)
    [(_, wrong)] = target_catalogs("enc-spec", [target])
    refused_dir = pg_workdir / "refused"
    with pytest.raises(CatalogError, match="another key"):
        restore_backup(
            wrong, wrong.get("users", manifest.backup_id), refused_dir, host=pg_host, bin_dir=pg_primary.bin_dir
        )
    assert not refused_dir.exists()

    monkeypatch.setenv(f"AIRFLOW_VAR_{KEY_VARIABLE.upper()}", original_key)
    [(_, right)] = target_catalogs("enc-spec", [target])
    data_dir = pg_workdir / "restored"
    restore_backup(right, right.get("users", manifest.backup_id), data_dir, host=pg_host, bin_dir=pg_primary.bin_dir)
    instance = start_scratch_instance(data_dir, host=pg_host, bin_dir=pg_primary.bin_dir)
    try:
        with psycopg.connect(**instance.conninfo().libpq_kwargs()) as conn:
            row = conn.execute("select count(*), max(v) from secrets where v = 'secret-4999'").fetchone()
        assert row == (1, "secret-4999")
    finally:
        instance.stop(mode="immediate")
