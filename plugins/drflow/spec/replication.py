"""How a PostgreSQL datastore replicates: the watch's settings and the replication mode the spec requires.

The seed asks for synchronous replication of critical data and asynchronous replication otherwise, so a
component's mode defaults to its criticality; the replication watch checks the live cluster against it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from drflow.spec.types import Duration, PositiveDuration, Size

ReplicationMode = Literal["synchronous", "asynchronous"]


class ReplicationWatch(BaseModel):
    """How the replication-watch DAG checks the replicas of a datastore."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Generate the replication-watch DAG (needs at least one replica).")
    interval: PositiveDuration = Field(default=timedelta(minutes=1), description="How often replication is checked.")
    warn_lag: Duration = Field(default=timedelta(seconds=60), description="Lag that raises a warning.")
    max_lag: Duration | None = Field(
        default=None, description="Lag that fails the check (default: the component's RPO)."
    )
    max_slot_retained: Size = Field(
        default=1024**3, description="WAL a replication slot may hold back on the primary before it is an alert."
    )
    mode: ReplicationMode | None = Field(
        default=None,
        description="synchronous: every commit waits for a standby (the watch alerts when none is synchronous or "
        "the primary fell back to asynchronous); asynchronous: no such check. Default: synchronous for a critical "
        "component, asynchronous otherwise (the seed: synchronous replication for critical data).",
    )


def replication_mode(watch: ReplicationWatch, criticality: str) -> ReplicationMode:
    """The mode the spec requires: as stated, else synchronous for critical data and asynchronous otherwise."""
    if watch.mode is not None:
        return watch.mode
    return "synchronous" if criticality == "critical" else "asynchronous"
