"""The sandbox's file storage and system image: the assets tree seeded once, the EBS volume created once in moto."""

from __future__ import annotations

from pathlib import Path

import boto3

from drflow.devtools.sandbox.demo_sources import VOLUME_SIZE_GIB, ensure_volumes, seed_demo_files
from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY
from drflow.engines.files.digest import tree_digest
from drflow.spec.load import load_spec
from tests.fixtures.s3 import MotoServer

ROOT = Path(__file__).resolve().parents[2]


def _spec(tmp_path: Path, assets: Path, tag: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nmetadata: {name: demo, owner: t}\nregions: [{name: us-east-1, role: primary}, {name: us-west-2}]\n"
        f"storage: [{{name: local-store, type: local, path: {tmp_path / 'store'}}}]\n"
        "components:\n"
        "  - {name: portal-assets, criticality: high, rto: 30m, rpo: 1h,\n"
        f"     datastore: {{type: files, path: {assets}}},\n"
        "     backups: [{preset: files, targets: [local-store], retention: {days: 14}}]}\n"
        "  - {name: analytics, criticality: medium, rto: 2h, rpo: 8d,\n"
        f"     snapshots: {{conn_id: drflow_aws, region: us-east-1, ebs: {{tags: {{app: {tag}}}}}}},\n"
        "     backups: [{preset: system-image, targets: [local-store], retention: {days: 35}}]}\n"
    )
    return spec


def test_the_assets_tree_is_seeded_once_and_changes_are_kept(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    spec = load_spec(_spec(tmp_path, assets, "t")).spec
    assert seed_demo_files(spec) == {"portal-assets": 3000}
    digest = tree_digest(assets)
    assert (assets / "uploads" / "pending").is_dir() and (assets / "latest.css").is_symlink()
    (assets / "img" / "part-0" / "asset-0000.dat").unlink()
    (assets / "img" / "new.png").write_bytes(b"png")
    assert seed_demo_files(spec) == {"portal-assets": 3000}  # counted, not rewritten
    assert tree_digest(assets) != digest and (assets / "img" / "new.png").exists()


def test_the_ebs_volume_is_created_once(tmp_path: Path, moto_server: MotoServer) -> None:
    tag = tmp_path.name[-20:]
    spec = load_spec(_spec(tmp_path, tmp_path / "assets", tag)).spec
    first = ensure_volumes(moto_server.endpoint_url, spec)
    assert ensure_volumes(moto_server.endpoint_url, spec) == first  # idempotent
    [volume_id] = first["analytics"]
    ec2 = boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=moto_server.endpoint_url,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )
    [volume] = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
    assert (volume["AvailabilityZone"], volume["Size"]) == ("us-east-1a", VOLUME_SIZE_GIB)
    assert {"Key": "app", "Value": tag} in volume["Tags"]
    ec2.delete_volume(VolumeId=volume_id)


def test_the_example_spec_names_what_the_sandbox_makes() -> None:
    spec = load_spec(ROOT / "plan_specs" / "api-marketplace.yaml").spec
    assets = spec.component("portal-assets").datastore
    assert assets is not None and assets.type == "files" and assets.path == "/var/tmp/drflow-demo/portal-assets"
    image = spec.component("analytics").snapshots
    assert image is not None and image.ebs is not None and image.ebs.tags == {"app": "analytics"}
