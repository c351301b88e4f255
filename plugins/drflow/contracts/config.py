"""What a configuration backup or drill is given (issue 9: configuration after each change)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drflow.contracts.base import ContractError
from drflow.spec.config import ConfigSource


@dataclass(frozen=True)
class ConfigRun:
    """What a configuration backup or drill is given: its source and where its versions live."""

    spec_name: str
    component: str
    source: ConfigSource
    targets: tuple[Mapping[str, Any], ...]
    poll_interval_s: float = 60.0
    retention_days: int | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "component": self.component,
            "source": self.source.to_params(),
            "targets": [dict(t) for t in self.targets],
            "poll_interval_s": self.poll_interval_s,
            "retention_days": self.retention_days,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ConfigRun:
        missing = [key for key in ("spec_name", "component", "source", "targets") if key not in params]
        if missing:
            raise ContractError(f"config run params lack {', '.join(missing)}; the plan builder writes them")
        return cls(
            spec_name=str(params["spec_name"]),
            component=str(params["component"]),
            source=ConfigSource.from_params(params["source"]),
            targets=tuple(params["targets"]),
            poll_interval_s=float(params.get("poll_interval_s") or 60.0),
            retention_days=int(params["retention_days"]) if params.get("retention_days") else None,
        )


@dataclass(frozen=True)
class ConfigRetentionRun:
    """A component's config retention in the retention DAG: the config targets (each pruned on its own),
    the config section's ``retention.days`` and ``retention.min_copies``."""

    targets: tuple[Mapping[str, Any], ...]
    days: int
    min_copies: int

    def to_params(self) -> dict[str, Any]:
        return {"targets": [dict(t) for t in self.targets], "days": self.days, "min_copies": self.min_copies}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ConfigRetentionRun:
        missing = [key for key in ("targets", "days", "min_copies") if key not in params]
        if missing:
            raise ContractError(f"config retention params lack {', '.join(missing)}; the plan builder writes them")
        return cls(
            targets=tuple(dict(t) for t in params["targets"]),
            days=int(params["days"]),
            min_copies=int(params["min_copies"]),
        )
