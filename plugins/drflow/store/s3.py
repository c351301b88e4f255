"""A backup store in an S3 bucket (AWS, MinIO, moto), through one boto3 S3 client.

The client comes from the amazon provider's S3Hook in Airflow, or from boto3 directly on the incident
CLI (see :mod:`drflow.store.s3_client`); either is made on first use, never at module import: DAG files
import this module and parsing them must stay cheap.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drflow.connections import ConnectionDefinitionError
from drflow.store.base import (
    CHUNK_SIZE,
    BackupStore,
    LockedObjectError,
    MissingKeyError,
    StoreError,
    check_key,
    check_prefix,
)
from drflow.units import human_duration

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig

MiB = 1024 * 1024
log = logging.getLogger(__name__)
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
_DENIED_CODES = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


class ArchivedObjectError(StoreError):
    """The object is in an archive class and must be restored (an S3 restore request) before it can be read."""


class S3Store(BackupStore):
    """Objects are S3 objects under ``s3://bucket/prefix/``.

    S3 makes an object visible only once its upload (multipart included) has
    completed, so writes are atomic without temp keys. Files larger than
    multipart_threshold go up in parallel parts of multipart_chunksize.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        aws_conn_id: str | None = "aws_default",
        region: str | None = None,
        *,
        multipart_threshold: int = 8 * MiB,
        multipart_chunksize: int = 16 * MiB,
        max_concurrency: int = 8,
        server_side_encryption: str | None = None,
        kms_key_id: str | None = None,
        storage_class: str | None = None,
        thaw_timeout_s: float = 48 * 3600,
        thaw_poll_s: float = 60,
    ) -> None:
        if not bucket or "/" in bucket:
            raise StoreError(f"invalid S3 bucket name {bucket!r}: give the bare bucket name, e.g. 'my-backups'")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)
        self.aws_conn_id = aws_conn_id
        self.region = region
        self._transfer_config_args: dict[str, Any] = {
            "multipart_threshold": multipart_threshold,
            "multipart_chunksize": multipart_chunksize,
            "max_concurrency": max_concurrency,
        }
        self.server_side_encryption = server_side_encryption
        self.kms_key_id = kms_key_id
        self.upload_args: dict[str, str] = {}
        """ExtraArgs of every upload (server-side encryption …)."""
        if server_side_encryption:
            self.upload_args["ServerSideEncryption"] = server_side_encryption
            if kms_key_id:
                self.upload_args["SSEKMSKeyId"] = kms_key_id
        self.storage_class = storage_class
        self.thaw_timeout_s = thaw_timeout_s
        self.thaw_poll_s = thaw_poll_s
        self._client: Any = None
        self._bucket_locks: bool | None = None
        self._transfer_config: TransferConfig | None = None

    @property
    def client(self) -> Any:
        """The boto3 S3 client (made on first use)."""
        if self._client is None:
            from drflow.store.s3_client import open_s3_client

            try:
                self._client, self._transfer_config = open_s3_client(
                    self.aws_conn_id, self.region, self._transfer_config_args
                )
            except ConnectionDefinitionError as exc:
                raise StoreError(f"{self.describe()}: {exc}") from exc
        return self._client

    @property
    def transfer_config(self) -> TransferConfig:
        self.client  # noqa: B018 - makes both
        assert self._transfer_config is not None
        return self._transfer_config

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def preflight(self) -> None:
        """With a lock to apply: the bucket must have Object Lock enabled (S3 refuses locks otherwise)."""
        if self.lock is None:
            return
        mode = self.lock.mode.lower()
        if not self.bucket_locks():
            raise StoreError(
                f"bucket {self.bucket!r} ({self.describe()}) has no Object Lock, but the backup policy's retention "
                f"({mode}) must lock every object so that it cannot be deleted early; enable Object Lock on the "
                f"bucket (aws s3api put-object-lock-configuration --bucket {self.bucket} "
                f"--object-lock-configuration ObjectLockEnabled=Enabled, versioning on) or send these backups to a "
                f"bucket that has it"
            )

    def _get_object(self, full: str, key: str) -> dict[str, Any]:
        """GetObject; an archived object is thawed (restore request, wait) and read then."""
        from botocore.exceptions import ClientError

        try:
            return dict(self.client.get_object(Bucket=self.bucket, Key=full))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) != "InvalidObjectState":
                raise
        self._thaw(full, key)
        return dict(self.client.get_object(Bucket=self.bucket, Key=full))

    def _thaw(self, full: str, key: str) -> None:
        """Issue the S3 restore request of an archived object (GLACIER, DEEP_ARCHIVE) and wait until it can be read."""
        import time

        from drflow.store.tiers import ARCHIVE_CLASSES, RETRIEVAL

        head = self._head(full, key) or {}
        storage_class = str(head.get("StorageClass") or "STANDARD")
        if storage_class not in ARCHIVE_CLASSES or 'ongoing-request="false"' in str(head.get("Restore") or ""):
            return
        if "Restore" not in head:
            from botocore.exceptions import ClientError

            with self._errors("request the restore of", key):
                try:
                    self.client.restore_object(
                        Bucket=self.bucket,
                        Key=full,
                        RestoreRequest={"Days": 2, "GlacierJobParameters": {"Tier": "Standard"}},
                    )
                except ClientError as exc:
                    if str(exc.response.get("Error", {}).get("Code", "")) != "RestoreAlreadyInProgress":
                        raise
            log.info(
                "requested the restore of %s from %s (up to %s); waiting",
                self.url_for(key),
                storage_class,
                RETRIEVAL[storage_class],
            )
        deadline = time.monotonic() + self.thaw_timeout_s
        while True:
            now = self._head(full, key) or {}
            if 'ongoing-request="false"' in str(now.get("Restore") or ""):
                return
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"{self.url_for(key)} is in {storage_class} and its restore request has not completed after "
                    f"{human_duration(self.thaw_timeout_s)}; retry later (the request stays), or restore another copy"
                )
            time.sleep(self.thaw_poll_s)

    def bucket_locks(self) -> bool:
        """True when the bucket has Object Lock enabled (asked once)."""
        if self._bucket_locks is None:
            from botocore.exceptions import ClientError

            with self._errors("check Object Lock of", ""):
                try:
                    config = self.client.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
                except ClientError as exc:
                    code = str(exc.response.get("Error", {}).get("Code", ""))
                    if code in _DENIED_CODES and self.lock is None:
                        return True  # not allowed to ask: deletes check each object's lock instead
                    if code != "ObjectLockConfigurationNotFoundError":
                        raise
                    config = {}
            self._bucket_locks = config.get("ObjectLockEnabled") == "Enabled"
        return self._bucket_locks

    def _refuse_locked(self, heads: list[tuple[str, dict[str, Any]]], what: str) -> None:
        """Raise LockedObjectError when any object is under a lock that has not expired."""
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        locked = [
            (key, head["ObjectLockMode"], head["ObjectLockRetainUntilDate"])
            for key, head in heads
            if head.get("ObjectLockMode")
            and head.get("ObjectLockRetainUntilDate")
            and head["ObjectLockRetainUntilDate"] > now
        ]
        if locked:
            key, mode, until = locked[0]
            raise LockedObjectError(
                f"refusing to delete {len(locked)} object(s) under {self.url_for(what)}: they are under "
                f"{str(mode).lower()}-mode Object Lock, e.g. {key} until {until.isoformat()}; drflow never deletes a "
                f"locked object. Wait until the lock expires (expiry then removes it)"
            )

    def _upload_args(self, key: str) -> dict[str, Any]:
        from drflow.store.lock import is_locked_key
        from drflow.store.manifest import is_backup_object
        from drflow.store.tiers import DATA_TAG

        args: dict[str, Any] = dict(self.upload_args)
        if is_backup_object(key):  # manifests and reports stay STANDARD and untagged: the catalog reads them at once
            args["Tagging"] = f"{DATA_TAG[0]}={DATA_TAG[1]}"
            if self.storage_class and self.storage_class != "STANDARD":
                args["StorageClass"] = self.storage_class
        if self.lock is not None and is_locked_key(key):
            args["ObjectLockMode"] = self.lock.mode
            args["ObjectLockRetainUntilDate"] = self.lock.retain_until
        return args

    def encryption_records(self) -> list[dict[str, str]]:
        if not self.server_side_encryption:
            return []
        record = {"layer": "server", "algorithm": self.server_side_encryption}
        return [{**record, "key_id": self.kms_key_id}] if self.kms_key_id else [record]

    def put_file(self, key: str, path: Path) -> None:
        full = self._full_key(key)
        if not Path(path).is_file():
            raise StoreError(f"cannot store {path} as {self.url_for(key)}: the source file does not exist")
        with self._errors("upload to", key):
            self.client.upload_file(
                str(path), self.bucket, full, ExtraArgs=self._upload_args(key), Config=self.transfer_config
            )

    def put_bytes(self, key: str, data: bytes) -> None:
        full = self._full_key(key)
        with self._errors("upload to", key):
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data, **self._upload_args(key))

    def get_file(self, key: str, path: Path) -> None:
        full = self._full_key(key)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".drflow-tmp-", dir=path.parent)
        os.close(fd)
        try:
            for attempt in (1, 2):
                try:
                    with self._errors("download", key):
                        self.client.download_file(
                            Bucket=self.bucket, Key=full, Filename=tmp_name, Config=self.transfer_config
                        )
                    break
                except ArchivedObjectError:
                    if attempt == 2:
                        raise
                    self._thaw(full, key)
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise

    def get_bytes(self, key: str) -> bytes:
        full = self._full_key(key)
        with self._errors("download", key):
            body = self._get_object(full, key)["Body"]
            return bytes(body.read())

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        full = self._full_key(key)
        with self._errors("download", key):
            body = self._get_object(full, key)["Body"]
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

    def exists(self, key: str) -> bool:
        full = self._full_key(key)
        return self._head(full, key) is not None

    def list_keys(self, prefix: str = "") -> list[str]:
        check_prefix(prefix)
        cut = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[cut:] for k in self._list_full(prefix))

    def delete(self, key: str) -> bool:
        full = self._full_key(key)
        head = self._head(full, key)
        existed = head is not None
        if head is not None:
            self._refuse_locked([(key, head)], key)
            with self._errors("delete", key):
                self.client.delete_object(Bucket=self.bucket, Key=full)
        return existed

    def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise StoreError(f"refusing to delete everything in {self.describe()}: an empty prefix was given")
        check_prefix(prefix)
        keys = self._list_full(prefix)
        if keys and self.bucket_locks():
            cut = len(self.prefix) + 1 if self.prefix else 0
            heads = [(k[cut:], self._head(k, k[cut:])) for k in keys]
            self._refuse_locked([(k, h) for k, h in heads if h is not None], prefix)
        client = self.client
        for start in range(0, len(keys), 1000):  # the DeleteObjects limit per request
            batch = keys[start : start + 1000]
            with self._errors("delete under", prefix):
                resp = client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            if errors := resp.get("Errors"):
                first = errors[0]
                raise StoreError(
                    f"cannot delete {len(errors)} object(s) under {self.url_for(prefix)}, e.g. "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}; "
                    f"check the permissions of Airflow connection {self.aws_conn_id!r} "
                    f"and any object lock on the bucket"
                )
        return len(keys)

    def size(self, key: str) -> int:
        full = self._full_key(key)
        head = self._head(full, key)
        if head is None:
            raise self._missing(key)
        return int(head["ContentLength"])

    # -- helpers ---------------------------------------------------------

    def _full_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _list_full(self, prefix: str) -> list[str]:
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        keys: list[str] = []
        with self._errors("list", prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full_prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def _head(self, full: str, key: str) -> dict[str, Any] | None:
        """The object's metadata, or None when there is no such object."""
        from botocore.exceptions import ClientError

        with self._errors("look up", key):
            try:
                return dict(self.client.head_object(Bucket=self.bucket, Key=full))
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) in _NOT_FOUND_CODES:
                    return None
                raise

    def _missing(self, key: str) -> MissingKeyError:
        return MissingKeyError(
            f"{self.url_for(key)} does not exist; check the key, or list the backups with `drflow backups list`"
        )

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Turn boto/provider exceptions into StoreError saying what failed, where, and what to do."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        where = self.url_for(key) if key else self.describe()
        conn = f"Airflow connection {self.aws_conn_id!r}"
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _NOT_FOUND_CODES:
                raise self._missing(key) from exc
            if code == "InvalidObjectState":
                raise ArchivedObjectError(
                    f"cannot {action} {where}: it is archived (GLACIER/DEEP_ARCHIVE) and not restored; "
                    f"drflow requests its restore and waits: retry"
                ) from exc
            if code == "NoSuchBucket":
                raise StoreError(
                    f"cannot {action} {where}: bucket {self.bucket!r} does not exist; create it "
                    f"or fix the bucket of this target in the spec"
                ) from exc
            if code in _DENIED_CODES:
                raise StoreError(
                    f"cannot {action} {where}: access denied ({code}); check the credentials of {conn} "
                    f"and the bucket policy"
                ) from exc
            raise StoreError(f"cannot {action} {where}: {code or exc}: {error.get('Message', '')}") from exc
        except (BotoCoreError, Boto3Error) as exc:
            raise StoreError(
                f"cannot {action} {where}: {exc}; check the endpoint, region and credentials of {conn}"
            ) from exc
