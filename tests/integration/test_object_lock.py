"""Immutability with S3 Object Lock (moto over HTTP): governance and compliance retention lock every object of a
backup at upload time; S3 itself refuses to delete a locked version, drflow refuses to delete or hide it, and a
lock is refused up front where it cannot hold (a bucket without Object Lock, a local directory)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from drflow.store.base import LockedObjectError, StoreError
from drflow.store.factory import target_catalogs
from drflow.store.fanout import Fanout
from drflow.store.lock import ObjectLock
from tests.fixtures.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, MotoServer
from tests.integration.test_catalog import take_backup


def _client(server: MotoServer) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )


@pytest.fixture
def locked_bucket(moto_server: MotoServer) -> Iterator[str]:
    """A bucket created with Object Lock enabled (and so versioned)."""
    name = f"drflow-lock-{uuid.uuid4().hex[:12]}"
    _client(moto_server).create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name  # moto cannot drop a bucket of locked objects before the locks expire: it lives in memory only


def _target(bucket: str, conn_id: str) -> dict[str, Any]:
    return {"name": "vault", "type": "s3", "bucket": bucket, "conn_id": conn_id, "region": "us-east-1", "prefix": "v"}


@pytest.mark.parametrize("policy", ["compliance", "governance"])
def test_every_object_is_locked_at_upload_and_s3_refuses_a_direct_delete(
    policy: str, moto_server: MotoServer, locked_bucket: str, s3_conn_id: str, tmp_path: Path
) -> None:
    lock = ObjectLock.for_retention(policy, 30)  # type: ignore[arg-type]
    assert lock is not None
    [(_, catalog)] = target_catalogs("lock-spec", [_target(locked_bucket, s3_conn_id)], lock=lock)
    manifest = take_backup(catalog, tmp_path)
    recorded = catalog.get(manifest.component, manifest.backup_id)
    assert recorded.object_lock is not None
    assert (recorded.object_lock.mode, recorded.object_lock.retain_until) == (policy, lock.retain_until)
    assert recorded.object_lock.retain_until > datetime.now(UTC) + timedelta(days=29)

    client = _client(moto_server)
    prefix = f"v/{catalog.prefix_for(manifest.component, manifest.backup_id)}"
    versions = client.list_object_versions(Bucket=locked_bucket, Prefix=prefix)["Versions"]
    assert sorted(v["Key"][len(prefix) :] for v in versions) == sorted(
        [o.name for o in manifest.objects] + ["manifest.json"]
    )
    for version in versions:
        head = client.head_object(Bucket=locked_bucket, Key=version["Key"], VersionId=version["VersionId"])
        assert head["ObjectLockMode"] == policy.upper(), version["Key"]
        with pytest.raises(ClientError) as refused:  # the S3 API itself, not drflow
            client.delete_object(Bucket=locked_bucket, Key=version["Key"], VersionId=version["VersionId"])
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # drflow neither deletes nor hides (delete marker) a locked backup; the catalog still lists it.
    with pytest.raises(LockedObjectError, match=f"{policy}-mode Object Lock.*never deletes a locked object"):
        catalog.discard(manifest.component, manifest.backup_id)
    assert [m.backup_id for m in catalog.list_backups(manifest.component)] == [manifest.backup_id]
    assert catalog.verify(recorded) == []


def test_a_lock_is_refused_before_the_backup_on_a_bucket_without_object_lock_and_on_a_local_target(
    s3_target: dict[str, Any], local_target: dict[str, Any], locked_bucket: str, s3_conn_id: str
) -> None:
    lock = ObjectLock.for_retention("compliance", 400)
    targets = [s3_target, local_target, _target(locked_bucket, s3_conn_id)]
    fanout = Fanout.begin(target_catalogs("lock-spec", targets, lock=lock), "db", "20261127T000000Z-daily-full")
    failed = {copy.name: copy.error or "" for copy in fanout.failed}
    assert set(failed) == {"test-s3", "test-local"} and [c.name for c in fanout.pending] == ["vault"]
    assert f"bucket {s3_target['bucket']!r}" in failed["test-s3"] and "enable Object Lock" in failed["test-s3"]
    assert "cannot lock objects" in failed["test-local"] and "retention policy standard" in failed["test-local"]


def test_standard_retention_locks_nothing_and_deletes_as_before(
    locked_bucket: str, s3_conn_id: str, tmp_path: Path
) -> None:
    [(_, catalog)] = target_catalogs("lock-spec", [_target(locked_bucket, s3_conn_id)], lock=None)
    manifest = take_backup(catalog, tmp_path)
    assert catalog.get(manifest.component, manifest.backup_id).object_lock is None
    assert catalog.discard(manifest.component, manifest.backup_id) == 3
    with pytest.raises(StoreError):
        catalog.get(manifest.component, manifest.backup_id)


def test_governance_on_a_local_target_is_drflow_s_own_rule_not_a_refusal(
    local_target: dict[str, Any], tmp_path: Path
) -> None:
    lock = ObjectLock.for_retention("governance", 30)
    [(_, catalog)] = target_catalogs("lock-spec", [local_target], lock=lock)
    manifest = take_backup(catalog, tmp_path)
    assert catalog.get(manifest.component, manifest.backup_id).object_lock is None  # nothing locked it
