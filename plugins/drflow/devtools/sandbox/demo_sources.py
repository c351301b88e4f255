"""Demo file storage and system image of the API Marketplace: the assets tree and the EBS volume the spec names.

Both are made only when missing, so `sandbox up` is idempotent and changes made while trying drflow out are
kept: a files datastore's directory is seeded with a few thousand small files when it does not exist or is
empty; an EBS volume is created in moto for each `snapshots: {ebs: {tags}}` source no volume carries yet.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY
from drflow.spec.model import Spec

ASSET_DIRS = ("img", "css", "js", "docs", "downloads")
FILES_PER_DIR = 600
"""5 folders × 4 subfolders × 150 files = 3,000 files of 0.2–2 KiB (about 3 MiB)."""
VOLUME_SIZE_GIB = 8


def seed_files_tree(root: Path, files_per_dir: int = FILES_PER_DIR) -> int:
    """A few thousand small files (deterministic content), an empty folder and a symlink; only when root is empty."""
    if root.is_dir() and any(root.iterdir()):
        return sum(1 for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    count = 0
    for top in ASSET_DIRS:
        for sub in range(4):
            folder = root / top / f"part-{sub}"
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(files_per_dir // 4):
                seed = hashlib.sha256(f"{top}/{sub}/{n}".encode()).digest()
                (folder / f"asset-{n:04d}.dat").write_bytes(seed * (8 + seed[0] % 56))
                count += 1
    (root / "uploads" / "pending").mkdir(parents=True, exist_ok=True)  # an empty directory is part of the tree
    (root / "latest.css").symlink_to("css/part-0/asset-0000.dat")
    return count


def seed_demo_files(spec: Spec) -> dict[str, int]:
    """Seed every `datastore: {type: files}` directory of the spec that is missing or empty; file counts."""
    seeded: dict[str, int] = {}
    for component in spec.components:
        datastore = component.datastore
        if datastore is not None and datastore.type == "files":
            seeded[component.name] = seed_files_tree(Path(datastore.path))
    return seeded


def _ec2(endpoint_url: str, region: str) -> Any:
    import boto3

    return boto3.client(
        "ec2",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )


def ensure_volumes(endpoint_url: str, spec: Spec) -> dict[str, list[str]]:
    """One EBS volume in moto per `snapshots: {ebs: {tags}}` source that no volume matches yet; volume ids."""
    made: dict[str, list[str]] = {}
    for component in spec.components:
        source = component.snapshots
        if source is None or source.ebs is None or not source.ebs.tags:
            continue
        client = _ec2(endpoint_url, source.region)
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in source.ebs.tags.items()]
        volumes = client.describe_volumes(Filters=filters)["Volumes"]
        if not volumes:
            tags = [{"Key": key, "Value": value} for key, value in source.ebs.tags.items()]
            tags.append({"Key": "Name", "Value": f"{spec.metadata.name}-{component.name}"})
            volumes = [
                client.create_volume(
                    AvailabilityZone=f"{source.region}a",
                    Size=VOLUME_SIZE_GIB,
                    VolumeType="gp3",
                    TagSpecifications=[{"ResourceType": "volume", "Tags": tags}],
                )
            ]
        made[component.name] = [v["VolumeId"] for v in volumes]
    return made
