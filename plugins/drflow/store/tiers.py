"""Storage tiers of S3 targets: the classes drflow writes, how long each takes to read back, and the bucket
lifecycle rule that moves backup data to a colder class after a while.

Only backup data objects go cold (by ``storage_class`` at upload, or by the lifecycle rule, which matches
them by the tag drflow puts on them); manifests and reports stay in STANDARD, so the catalog lists and
plans a restore at once. Reading an archived object (GLACIER, DEEP_ARCHIVE) needs an S3 restore request
first: the S3 store issues it and waits (see :meth:`drflow.store.s3.S3Store.thaw`).
"""

from __future__ import annotations

from typing import Any, Final

from drflow.storage_classes import ARCHIVE_CLASSES, RETRIEVAL, STORAGE_CLASSES

__all__ = ["ARCHIVE_CLASSES", "DATA_TAG", "RETRIEVAL", "STORAGE_CLASSES", "lifecycle_rule"]

DATA_TAG: Final = ("drflow-object", "data")
"""The tag of every backup data object, which the lifecycle rule filters on."""


def lifecycle_rule(name: str, prefix: str, after_days: int, storage_class: str) -> dict[str, Any]:
    """The bucket lifecycle rule of a target's ``transition``, for ``put_bucket_lifecycle_configuration``:
    backup data (tagged) under the target's prefix moves to ``storage_class`` after ``after_days``."""
    prefix = prefix.strip("/")
    days = max(1, int(after_days))
    return {
        "ID": f"drflow-{name}-to-{storage_class.lower()}",
        "Status": "Enabled",
        "Filter": {
            "And": {
                "Prefix": f"{prefix}/" if prefix else "",
                "Tags": [{"Key": DATA_TAG[0], "Value": DATA_TAG[1]}],
            }
        },
        "Transitions": [{"Days": days, "StorageClass": storage_class}],
    }
