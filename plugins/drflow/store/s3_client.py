"""The S3 store's boto3 client, obtained one of two ways from the same Airflow connection.

- In Airflow (tasks, tests, anything that has not asked otherwise): the amazon provider's ``S3Hook``,
  which understands every kind of aws connection (assumed roles, profiles, secrets backends …).
- On the incident CLI (after :func:`drflow.connections.read_without_airflow`): boto3 directly, from the
  connection's ``AIRFLOW_CONN_*`` definition read the way the provider reads it (keys in login/password or
  the extra, ``aws_session_token``, ``region_name``, ``endpoint_url``, ``service_config.s3``, ``verify``,
  ``config_kwargs``, ``profile_name``). A connection using anything else (``role_arn`` …) goes through the
  hook instead, so no connection means something different on the two paths.

Both return a plain boto3 S3 client and a ``TransferConfig``; the store does the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drflow.connections import (
    AWS_PLAIN_EXTRA_KEYS,
    ConnectionDef,
    aws_session_kwargs,
    get_connection,
    not_defined,
    reading_without_airflow,
)

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig

# Extra keys whose meaning the boto3 path reproduces exactly; any other key sends the connection to the hook.
PLAIN_EXTRA_KEYS = AWS_PLAIN_EXTRA_KEYS


def open_s3_client(
    conn_id: str | None, region: str | None, transfer_args: dict[str, Any]
) -> tuple[Any, TransferConfig]:
    """A boto3 S3 client and transfer configuration for connection ``conn_id`` (None: the default AWS chain)."""
    if reading_without_airflow():
        if conn_id is None:
            return _plain(None, region, transfer_args)
        conn = get_connection(conn_id)
        if set(conn.extra) <= PLAIN_EXTRA_KEYS and set(conn.extra.get("service_config") or {}) <= {"s3"}:
            return _plain(conn, region, transfer_args)
    return _hook(conn_id, region, transfer_args)


def _plain(conn: ConnectionDef | None, region: str | None, transfer_args: dict[str, Any]) -> tuple[Any, TransferConfig]:
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore import UNSIGNED
    from botocore.config import Config

    extra = conn.extra if conn is not None else {}
    s3_config = dict((extra.get("service_config") or {}).get("s3") or {})
    session = boto3.session.Session(**aws_session_kwargs(conn, region))
    config_kwargs = dict(extra.get("config_kwargs") or {})
    if config_kwargs.get("signature_version") == "unsigned":
        config_kwargs["signature_version"] = UNSIGNED
    client = session.client(
        "s3",
        endpoint_url=s3_config.get("endpoint_url", extra.get("endpoint_url")),
        config=Config(**config_kwargs),
        verify=extra.get("verify"),
    )
    return client, TransferConfig(**{**transfer_args, **(s3_config.get("transfer_config_args") or {})})


def _hook(conn_id: str | None, region: str | None, transfer_args: dict[str, Any]) -> tuple[Any, TransferConfig]:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import BaseHook

    if conn_id is not None:  # an undefined conn_id would silently fall back to the default AWS credentials
        try:
            BaseHook.get_connection(conn_id)
        except Exception as exc:  # the SDK raises its own not-found type; any failure means "not usable"
            raise not_defined(conn_id, str(exc)) from exc
    hook = S3Hook(aws_conn_id=conn_id, region_name=region, transfer_config_args=dict(transfer_args))
    return hook.get_conn(), hook.transfer_config
