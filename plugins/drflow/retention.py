"""How firmly a backup is kept: the one definition of the retention policies drflow knows.

standard: deleted after its days; governance: deletion needs an override; compliance: nobody can
delete it before its days (object lock where the store supports it). Used by the spec, the jobs, the
operators and the catalog alike; typing only, cheap to import.
"""

from __future__ import annotations

from typing import Literal, get_args

RetentionPolicy = Literal["standard", "compliance", "governance"]
RETENTION_POLICIES: tuple[str, ...] = get_args(RetentionPolicy)
