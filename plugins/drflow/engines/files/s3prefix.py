"""Assets kept under an S3 prefix: list it, copy what changed (by ETag and size), lay a listing out.

The caller hands in a boto3 S3 client (the store's connection code makes it). A listing maps each key,
relative to the prefix, to its ETag and size; a backup copies the objects whose (ETag, size) differ from
the base listing's, and stores the whole listing, each key naming the backup that holds its bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LISTING_NAME = "listing.json"


class PrefixError(RuntimeError):
    """The S3 prefix cannot be read or restored; the message says what to do."""


@dataclass(frozen=True)
class ListedObject:
    etag: str
    size: int
    backup_id: str
    """The backup whose object ``object`` holds this key's bytes."""
    object: str

    def to_json(self) -> dict[str, Any]:
        return {"etag": self.etag, "size": self.size, "backup_id": self.backup_id, "object": self.object}


def list_prefix(client: Any, bucket: str, prefix: str) -> dict[str, tuple[str, int]]:
    """``{key relative to prefix: (etag, size)}`` of every object under ``bucket/prefix``."""
    base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    found: dict[str, tuple[str, int]] = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for item in page.get("Contents", []):
                rel = str(item["Key"])[len(base) :]
                if rel and not rel.endswith("/"):
                    found[rel] = (str(item["ETag"]).strip('"'), int(item["Size"]))
    except Exception as exc:  # botocore's errors carry the code and the bucket
        raise PrefixError(
            f"cannot list s3://{bucket}/{base}: {exc}; check the bucket, the prefix and the connection's rights"
        ) from exc
    return found


def object_name(rel_key: str) -> str:
    """A store object name for a key (S3 keys may hold what store keys may not)."""
    return "objects/" + hashlib.sha256(rel_key.encode()).hexdigest()


def changed_keys(now: Mapping[str, tuple[str, int]], base: Mapping[str, ListedObject]) -> list[str]:
    """Keys that are new, or whose ETag or size differ from ``base``."""
    return sorted(k for k, (etag, size) in now.items() if k not in base or (base[k].etag, base[k].size) != (etag, size))


def download(client: Any, bucket: str, prefix: str, rel_key: str, dest: Path) -> None:
    base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        client.download_file(bucket, base + rel_key, str(dest))
    except Exception as exc:
        raise PrefixError(
            f"cannot copy s3://{bucket}/{base}{rel_key}: {exc}; check the connection's rights, then retry"
        ) from exc


def dump_listing(listing: Mapping[str, ListedObject]) -> bytes:
    return json.dumps({k: v.to_json() for k, v in sorted(listing.items())}, indent=1).encode()


def load_listing(data: bytes) -> dict[str, ListedObject]:
    raw = json.loads(data)
    return {k: ListedObject(v["etag"], int(v["size"]), v["backup_id"], v["object"]) for k, v in raw.items()}


def safe_relative(rel_key: str) -> Path:
    """The key as a relative path inside a restore directory; refuses keys that would leave it."""
    parts = rel_key.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\0" in rel_key:
        raise PrefixError(
            f"object key {rel_key!r} cannot be written as a file (empty, '.' or '..' segments); "
            "restore it with the AWS CLI instead"
        )
    return Path(*parts)
