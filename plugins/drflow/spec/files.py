"""File-storage datastores of the spec: a directory tree on a host, or assets under an S3 prefix."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from drflow.spec.diagnostics import Diagnostic
from drflow.spec.hosts import HostSpec
from drflow.spec.source import Loc, Source
from drflow.spec.types import PlainPath

FILES_DATASTORES = ("files", "s3-prefix")
# The seed's "File storage: daily full, hourly incremental".
FILES_PRESET: list[dict[str, str]] = [
    {"name": "daily-full", "type": "full", "method": "files", "schedule": "0 2 * * *"},
    {"name": "hourly-incremental", "type": "incremental", "method": "files", "schedule": "@hourly"},
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilesDatastore(_Model):
    """A directory tree (uploads, assets) backed up with GNU tar's listed-incremental snapshots and zstd."""

    type: Literal["files"]
    path: PlainPath = Field(description="The directory to back up, an absolute path on the host.")
    host: HostSpec = Field(
        "local", description="Where the directory is: 'local' (the worker's machine) or {ssh_conn_id: CONN} (over SSH)."
    )


class S3PrefixDatastore(_Model):
    """Assets kept in object storage: every object under bucket/prefix, copied when its ETag or size changes."""

    type: Literal["s3-prefix"]
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = Field(
        description="The bucket that holds the assets."
    )
    prefix: str = Field("", description="Key prefix of the assets ('' for the whole bucket).")
    conn_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,250}$")] = Field(
        description="Airflow connection of type aws that can list and read the bucket."
    )
    region: str | None = Field(None, description="Region of the bucket (default: the connection's).")


def check_method_fits_datastore(source: Source, loc: Loc, policy: dict[str, Any], datastore: Any) -> list[Diagnostic]:
    """A files policy (or preset) needs a files/s3-prefix datastore, a database method a postgres one."""
    kind = datastore.get("type") if isinstance(datastore, dict) else None
    if kind is None:
        return []
    files_store = kind in FILES_DATASTORES
    if "preset" in policy:
        preset, key = policy.get("preset"), "preset"
        fits = preset == "files" if files_store else preset != "files"
        right = "preset: files" if files_store else "preset: database"
    else:
        preset, key = policy.get("method"), "method"
        if not isinstance(preset, str):
            return []
        fits = preset == "files" if files_store else preset != "files"
        right = (
            "method: files" if files_store else "a database method (pg_basebackup, pg_receivewal, pgbackrest, pg_dump)"
        )
    if fits:
        compression = policy.get("compression")
        if key == "method" and files_store and compression not in (None, "zstd"):
            message = f"backup policy '{policy.get('name')}' asks for compression '{compression}'"
            message += ", but file backups are always compressed with zstd (tar archives) or stored as copied"
            return [source.diagnostic((*loc, "compression"), message, "remove 'compression' or set it to zstd")]
        return []
    message = (
        f"backup policy '{policy.get('name', preset)}' uses {key} '{preset}', which cannot back up a {kind} datastore"
    )
    return [source.diagnostic((*loc, key), message, f"use {right}, or change the component's datastore")]
