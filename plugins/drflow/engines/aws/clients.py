"""EC2, RDS and Route53 clients of an Airflow aws connection, and waiting for AWS resources.

In Airflow, the amazon provider's ``EC2Hook`` / ``RdsHook`` (``AwsBaseHook`` for Route53) build the client
(every kind of aws connection works); on the incident CLI (:func:`drflow.connections.read_without_airflow`)
plain boto3 does, from the connection's ``AIRFLOW_CONN_*`` read as the provider reads it — a connection using
anything plain boto3 cannot reproduce (``role_arn`` …) still goes through the hook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from drflow.connections import (
    AWS_PLAIN_EXTRA_KEYS,
    aws_session_kwargs,
    get_connection,
    not_defined,
    reading_without_airflow,
)
from drflow.units import human_duration

Service = Literal["ec2", "rds", "route53"]


class AwsSnapshotError(RuntimeError):
    """An AWS call or wait of a snapshot source failed; the message says what and what to do."""


@dataclass(frozen=True)
class Waiting:
    """How long and how often a snapshot, copy, volume or instance is polled."""

    poll_s: float = 15.0
    timeout_s: float = 6 * 3600.0

    def config(self) -> dict[str, int]:
        delay = max(1, round(self.poll_s))
        return {"Delay": delay, "MaxAttempts": max(1, math.ceil(self.timeout_s / delay))}


def open_client(service: Service, conn_id: str, region: str) -> Any:
    """A boto3 client of ``service`` in ``region`` for Airflow connection ``conn_id``."""
    if reading_without_airflow():
        conn = get_connection(conn_id)
        services = set(conn.extra.get("service_config") or {})
        if set(conn.extra) <= AWS_PLAIN_EXTRA_KEYS and services <= {service}:
            import boto3

            config = dict((conn.extra.get("service_config") or {}).get(service) or {})
            session = boto3.session.Session(**aws_session_kwargs(conn, region))
            return session.client(
                service,
                endpoint_url=config.get("endpoint_url", conn.extra.get("endpoint_url")),
                verify=conn.extra.get("verify"),
            )
    return _hook_client(service, conn_id, region)


def _hook_client(service: Service, conn_id: str, region: str) -> Any:
    from airflow.sdk import BaseHook

    try:  # an undefined conn_id would silently fall back to the default AWS credentials
        BaseHook.get_connection(conn_id)
    except Exception as exc:  # the SDK raises its own not-found type; any failure means "not usable"
        raise not_defined(conn_id, str(exc)) from exc
    if service == "route53":
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        return AwsBaseHook(aws_conn_id=conn_id, region_name=region, client_type="route53").get_conn()
    if service == "ec2":
        from airflow.providers.amazon.aws.hooks.ec2 import EC2Hook

        return EC2Hook(aws_conn_id=conn_id, region_name=region, api_type="client_type").get_conn()
    from airflow.providers.amazon.aws.hooks.rds import RdsHook

    return RdsHook(aws_conn_id=conn_id, region_name=region).conn


def wait_for(client: Any, waiter: str, what: str, waiting: Waiting, **ids: Any) -> None:
    """Block until boto3's waiter ``waiter`` succeeds; AwsSnapshotError naming ``what`` when it cannot."""
    from botocore.exceptions import WaiterError

    try:
        client.get_waiter(waiter).wait(**ids, WaiterConfig=waiting.config())
    except WaiterError as exc:
        raise AwsSnapshotError(
            f"{what} did not become ready within {human_duration(waiting.timeout_s)} ({exc}); look at it in the AWS "
            "console, "
            "then retry the task (a retry resumes with the same snapshot) or raise snapshots.wait_timeout"
        ) from None


def aws_error(what: str, exc: Exception) -> AwsSnapshotError:
    """An AWS API error as a message that says what failed and what to do."""
    return AwsSnapshotError(
        f"{what} failed: {exc}; check that the connection's credentials may do it and that the resource exists, "
        "then retry"
    )


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
