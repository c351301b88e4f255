"""S3 storage classes drflow writes, and how long each takes before its objects can be read: a leaf vocabulary
(the spec's `storage_class`, the store's restore requests and the spec's RTO check all use it)."""

from __future__ import annotations

from datetime import timedelta
from typing import Final, Literal, get_args

StorageClass = Literal["STANDARD", "STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"]
STORAGE_CLASSES: Final[tuple[str, ...]] = get_args(StorageClass)
ARCHIVE_CLASSES: Final = frozenset({"GLACIER", "DEEP_ARCHIVE"})
"""Classes whose objects cannot be read before an S3 restore request completes."""
RETRIEVAL: Final[dict[str, timedelta]] = {
    "STANDARD": timedelta(0),
    "STANDARD_IA": timedelta(0),
    "GLACIER_IR": timedelta(0),
    "GLACIER": timedelta(hours=5),  # standard retrieval: 3-5 hours
    "DEEP_ARCHIVE": timedelta(hours=12),  # standard retrieval: within 12 hours
}
"""How long before an object of each class can be read (AWS's standard retrieval, the upper bound)."""
