"""Snapshot sources (``snapshots: {type: snapshot, …}`` of a component): EBS volumes or an RDS instance.

drflow asks AWS to snapshot them (weekly with ``preset: system-image``), tags every snapshot with its
metadata, copies it to the other regions and records the snapshot ids in the catalog of every storage
target; a restore creates a volume (or an RDS instance) from the copy in a chosen region.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from drflow.spec.types import PositiveDuration

_ConnId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,250}$")]
_TagText = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EbsVolumes(_Model):
    """The EBS volume(s) snapshotted: one by id, or every volume carrying all the given tags."""

    volume_id: Annotated[str, StringConstraints(pattern=r"^vol-[0-9a-f]{8,17}$")] | None = Field(
        None, description="Id of the volume, e.g. vol-0abc12345def67890."
    )
    tags: dict[_TagText, _TagText] = Field(
        {}, description="Snapshot every volume that carries all these tags (key: value), e.g. {app: analytics}."
    )

    @model_validator(mode="after")
    def _one_way(self) -> EbsVolumes:
        if (self.volume_id is None) == (not self.tags):
            raise ValueError(
                "name the volumes either by volume_id or by tags (not both, not neither), "
                "e.g. ebs: {volume_id: vol-0abc12345def67890} or ebs: {tags: {app: analytics}}"
            )
        return self


class RdsInstance(_Model):
    """The RDS DB instance snapshotted (a DB snapshot of the whole instance)."""

    db_instance: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,62}$")] = Field(
        description="DB instance identifier, e.g. analytics-db."
    )
    instance_class: str = Field(
        "db.t3.micro", min_length=1, description="Instance class of an instance restored from a snapshot."
    )


class SnapshotDatastore(_Model):
    """EBS volumes or an RDS instance that drflow snapshots through the amazon provider's hooks."""

    type: Literal["snapshot"] = Field("snapshot", description="snapshot: AWS snapshots (EBS volumes or RDS).")
    conn_id: _ConnId = Field(description="Airflow connection of type aws allowed to snapshot, copy and restore.")
    region: str = Field(description="Region of the volumes or the instance, one of `regions`.")
    ebs: EbsVolumes | None = Field(None, description="Snapshot EBS volumes (by id or by tags).")
    rds: RdsInstance | None = Field(None, description="Snapshot an RDS DB instance.")
    copy_to: list[str] | None = Field(
        None, description="Regions every snapshot is copied to (default: every secondary region of `regions`)."
    )
    availability_zone: str | None = Field(
        None,
        description="Availability zone, in the first copy_to region, of volumes a drill creates (default: that "
        "region + 'a'); `drflow restore --zone` chooses it for a restore.",
    )
    poll_interval: PositiveDuration = Field(
        timedelta(seconds=15), description="How often a snapshot, copy, volume or instance is polled while waited for."
    )
    wait_timeout: PositiveDuration = Field(
        timedelta(hours=6), description="Fail when a snapshot, copy, volume or instance is not ready after this long."
    )

    @model_validator(mode="after")
    def _one_source(self) -> SnapshotDatastore:
        if (self.ebs is None) == (self.rds is None):
            raise ValueError(
                "give exactly one of ebs: {volume_id | tags} or rds: {db_instance}; "
                "to snapshot both, put the RDS instance in a component of its own"
            )
        return self

    @property
    def kind(self) -> Literal["ebs", "rds"]:
        return "ebs" if self.ebs is not None else "rds"
