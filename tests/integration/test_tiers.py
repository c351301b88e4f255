"""Storage tiers on S3 (moto over HTTP): backup data written in the target's class (manifests stay STANDARD),
a GLACIER entry restored through the S3 restore request, and the lifecycle rule of a transition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from drflow.store.factory import target_catalogs
from drflow.store.tiers import lifecycle_rule
from tests.integration.test_catalog import take_backup


def test_a_glacier_entry_is_restored_through_the_restore_request(s3_target: dict[str, Any], tmp_path: Path) -> None:
    target = {**s3_target, "storage_class": "GLACIER"}
    [(_, catalog)] = target_catalogs("tier-spec", [target])
    manifest = take_backup(catalog, tmp_path, files={"base.tar": b"cold data " * 1000})
    client = catalog.store.client  # type: ignore[attr-defined]
    bucket, prefix = (
        target["bucket"],
        f"{target['prefix']}/{catalog.prefix_for(manifest.component, manifest.backup_id)}",
    )
    data_key, manifest_key = prefix + "base.tar", prefix + "manifest.json"
    assert client.head_object(Bucket=bucket, Key=data_key)["StorageClass"] == "GLACIER"
    assert "StorageClass" not in client.head_object(Bucket=bucket, Key=manifest_key)  # STANDARD: listable at once
    with pytest.raises(ClientError) as cold:  # what any reader meets before a restore request
        client.get_object(Bucket=bucket, Key=data_key)
    assert cold.value.response["Error"]["Code"] == "InvalidObjectState"

    recorded = catalog.get(manifest.component, manifest.backup_id)  # the manifest reads without a restore
    files = catalog.fetch(recorded, tmp_path / "out")
    assert files["base.tar"].read_bytes() == b"cold data " * 1000
    assert 'ongoing-request="false"' in client.head_object(Bucket=bucket, Key=data_key)["Restore"]
    assert catalog.verify(recorded) == []


def test_a_transition_is_a_lifecycle_rule_the_bucket_accepts(s3_target: dict[str, Any], tmp_path: Path) -> None:
    rule = lifecycle_rule("test-s3", s3_target["prefix"], 30, "DEEP_ARCHIVE")
    [(_, catalog)] = target_catalogs("tier-spec", [s3_target])
    client = catalog.store.client  # type: ignore[attr-defined]
    client.put_bucket_lifecycle_configuration(Bucket=s3_target["bucket"], LifecycleConfiguration={"Rules": [rule]})
    [stored] = client.get_bucket_lifecycle_configuration(Bucket=s3_target["bucket"])["Rules"]
    assert stored["Transitions"] == [{"Days": 30, "StorageClass": "DEEP_ARCHIVE"}]
    assert stored["Filter"]["And"]["Prefix"] == f"{s3_target['prefix']}/"
    # The rule matches backup data by its tag, never manifests.
    manifest = take_backup(catalog, tmp_path)
    prefix = f"{s3_target['prefix']}/{catalog.prefix_for(manifest.component, manifest.backup_id)}"
    tags = client.get_object_tagging(Bucket=s3_target["bucket"], Key=prefix + "base.tar")["TagSet"]
    assert tags == [{"Key": "drflow-object", "Value": "data"}]
    assert client.get_object_tagging(Bucket=s3_target["bucket"], Key=prefix + "manifest.json")["TagSet"] == []


def test_drflow_lifecycle_applies_the_transition_of_the_spec(s3_target: dict[str, Any], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from drflow.cli import app

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nmetadata: {name: tiers, owner: t}\nregions: [{name: us-east-1, role: primary}]\n"
        f"storage:\n  - {{name: cold, type: s3, bucket: {s3_target['bucket']}, conn_id: {s3_target['conn_id']}, "
        "region: us-east-1, prefix: p, transition: {after: 30d, storage_class: GLACIER}}\n"
        "components: [{name: web, criticality: low, rto: 1h, rpo: 1d}]\n"
    )
    result = CliRunner().invoke(app, ["lifecycle", "--spec", str(spec), "--apply"])
    assert result.exit_code == 0, result.output
    [(_, catalog)] = target_catalogs("tiers", [s3_target])
    client = catalog.store.client  # type: ignore[attr-defined]
    [rule] = client.get_bucket_lifecycle_configuration(Bucket=s3_target["bucket"])["Rules"]
    assert rule["ID"] == "drflow-cold-to-glacier" and rule["Transitions"] == [{"Days": 30, "StorageClass": "GLACIER"}]
