"""Configuration sources of a component: a directory of config files or an HTTP endpoint (issue 9).

``ConfigSettings`` is what a spec writes under a component's ``config:``; ``ConfigSource`` is the plain,
JSON-serialisable description of where to read it, which the plan hands the trigger and the tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from drflow.spec.types import NAME_PATTERN, PlainPath, PositiveDuration, Schedule

SourceKind = Literal["directory", "http"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigRetention(_Model):
    """How long config versions are kept."""

    days: int = Field(ge=1, le=36500, description="Keep each config version at least this many days.")
    min_copies: int = Field(
        2,
        ge=1,
        le=1000,
        description="Retention never prunes below this many versions (the newest version is always kept).",
    )


class ConfigDrill(_Model):
    """Restore a config version into scratch, compare its hash, optionally run a validation command."""

    schedule: Schedule
    validate_command: str | None = Field(
        None,
        description="A reviewed script of include/commands/ run with the restored directory as its argument "
        "(e.g. a routes linter); the drill fails when it exits non-zero.",
    )
    timeout: PositiveDuration = Field(default=timedelta(minutes=5), description="Timeout of the command.")


class ConfigSettings(_Model):
    """The component's configuration, backed up after each change (`preset: config` of the seed)."""

    type: SourceKind = Field(
        description="directory: a directory of config files on the worker (e.g. the gateway's routes); "
        "http: an endpoint returning the running config (an admin API) through an Airflow HTTP connection."
    )
    path: PlainPath | None = Field(None, description="type directory: the directory (absolute).")
    conn_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,250}$")] | None = Field(
        None, description="type http: the Airflow http connection of the service's admin API."
    )
    endpoint: str = Field("/", description="type http: path of the running config on that connection.")
    poll_interval: PositiveDuration = Field(
        default=timedelta(minutes=1),
        description="How often the triggerer hashes the config; a backup runs within one interval of a change, "
        "and never when the hash is unchanged.",
    )
    targets: list[Annotated[str, StringConstraints(pattern=NAME_PATTERN)]] = Field(
        min_length=1, description="Storage targets that receive every version."
    )
    retention: ConfigRetention
    drill: ConfigDrill | None = Field(None, description="A scheduled restore drill of the newest version.")

    @model_validator(mode="after")
    def _where(self) -> ConfigSettings:
        if self.type == "directory" and not self.path:
            raise ValueError("a config source of type directory needs path: the absolute directory of the files")
        if self.type == "http" and not self.conn_id:
            raise ValueError("a config source of type http needs conn_id: the Airflow http connection of the API")
        return self

    def source(self) -> ConfigSource:
        return ConfigSource(kind=self.type, path=self.path, conn_id=self.conn_id, endpoint=self.endpoint)


@dataclass(frozen=True)
class ConfigSource:
    """Where a component's configuration is read from (built by the plan, rebuilt by operators/trigger)."""

    kind: SourceKind
    path: str | None = None
    conn_id: str | None = None
    endpoint: str = "/"
    timeout_s: float = 30.0

    def describe(self) -> str:
        if self.kind == "directory":
            return str(self.path)
        return f"http connection {self.conn_id} {self.endpoint}"

    def to_params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "conn_id": self.conn_id,
            "endpoint": self.endpoint,
            "timeout_s": self.timeout_s,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ConfigSource:
        kind = params.get("kind")
        if kind not in ("directory", "http"):
            raise ValueError(f"config source kind {kind!r} is neither 'directory' nor 'http'")
        return cls(
            kind=kind,
            path=params.get("path"),
            conn_id=params.get("conn_id"),
            endpoint=str(params.get("endpoint") or "/"),
            timeout_s=float(params.get("timeout_s") or 30.0),
        )
