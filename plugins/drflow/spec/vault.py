"""The vault settings of a storage target: client-side encryption and the bucket's lifecycle transition."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from drflow.spec.types import PositiveDuration
from drflow.storage_classes import StorageClass

ConnId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,250}$")]


class _VaultModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientEncryption(_VaultModel):
    """Client-side AES-256-GCM of every backup object, before it leaves the worker. The key is never in the spec."""

    key_conn_id: ConnId | None = Field(
        None, description="Airflow connection whose password is the key (32 random bytes, base64 or 64 hex digits)."
    )
    key_variable: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,250}$")] | None = Field(
        None, description="Airflow variable whose value is the key (32 random bytes, base64 or 64 hex digits)."
    )

    @model_validator(mode="after")
    def _one_key_source(self) -> ClientEncryption:
        if (self.key_variable is None) == (self.key_conn_id is None):
            raise ValueError(
                "give exactly one of key_conn_id (an Airflow connection holding the key as its password) "
                "or key_variable (an Airflow variable holding the key)"
            )
        return self


class Transition(_VaultModel):
    """A bucket lifecycle rule: backup data moves to a colder class after a while (manifests stay STANDARD)."""

    after: PositiveDuration = Field(description="Age at which backup data moves, in days, e.g. 30d.")
    storage_class: StorageClass = Field(description="The colder class: STANDARD_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE.")

    @property
    def after_days(self) -> int:
        return max(1, round(self.after.total_seconds() / 86400))
