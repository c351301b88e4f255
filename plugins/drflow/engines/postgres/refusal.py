"""Why a failover step refused to act: every refusal says why, and what would let it proceed."""

from __future__ import annotations

from typing import Any


class Refused(RuntimeError):
    """A safety check refused a step: ``why`` it did, and ``unblock`` (what would let it proceed)."""

    def __init__(self, why: str, unblock: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"refused: {why}; to proceed: {unblock}")
        self.why = why
        self.unblock = unblock
        self.details = details or {}


class ReplicaUnreachable(Refused):
    pass


class NotInRecovery(Refused):
    pass


class ReplayPaused(Refused):
    pass


class LagExceeded(Refused):
    pass


class LagUnknown(Refused):
    pass


class SplitBrainRisk(Refused):
    """The node that must be fenced accepts writes, or nobody can tell whether it does."""


class FenceFailed(Refused):
    pass


class PromotionFailed(RuntimeError):
    """pg_promote() ran but the node did not become a writable primary in time."""
