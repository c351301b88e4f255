"""Moving traffic: switch a Route53 record, call or check an HTTP endpoint. Usable without operators.

Route53 goes through the amazon provider's ``AwsBaseHook`` (so an aws connection with an
``endpoint_url`` extra points it at moto in tests), HTTP through the http provider's ``HttpHook``.
Airflow and boto3 are imported inside the functions: DAG files import modules next to this one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from drflow.units import human_duration

RECORD_TYPES = ("A", "AAAA", "CNAME")
DEFAULT_WAIT_S = 180.0
BODY_TAIL_CHARS = 500


class TrafficError(RuntimeError):
    """Traffic could not be moved or checked; the message says why and what to do.

    ``refused`` marks a problem a retry cannot fix (a missing zone or record, a wrong status):
    operators fail those at once instead of retrying.
    """

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


# -- Route53 --------------------------------------------------------------------------------------


def route53_client(conn_id: str) -> Any:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=conn_id, client_type="route53").get_conn()


def switch_dns(
    conn_id: str,
    hosted_zone_id: str,
    record_name: str,
    record_type: str,
    value: str,
    ttl: int,
    *,
    wait_s: float = DEFAULT_WAIT_S,
    poll_s: float = 2.0,
    client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """UPSERT one plain record to ``value``, wait until Route53 reports INSYNC, read it back.

    Refuses (``TrafficError(refused=True)``) when the zone or the record does not exist: drflow only
    moves an existing record, so there is always an old value to record and to fail back to. A retry
    after a successful switch finds the value already in place and reports ``changed: False``.
    """
    if record_type not in RECORD_TYPES:
        raise TrafficError(
            f"refused: record type {record_type!r} is not switchable; to proceed: use one of {', '.join(RECORD_TYPES)}",
            refused=True,
        )
    route53 = client if client is not None else route53_client(conn_id)
    zone_id = _zone_id(hosted_zone_id)
    zone_name = _get_zone_name(route53, zone_id, conn_id)
    where = f"{record_name} {record_type} in hosted zone {zone_id} ({zone_name})"

    before = _plain_record(route53, zone_id, record_name, record_type, where)
    old_values = [r["Value"] for r in before.get("ResourceRecords", [])]
    old_ttl = before.get("TTL")
    started = time.monotonic()
    if _same_values(record_type, old_values, [value]) and old_ttl == ttl:
        return _result(zone_id, record_name, record_type, old_values, old_ttl, value, ttl, None, "INSYNC", False, 0.0)

    response = route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Comment": f"drflow: switch {record_name} to {value}",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": record_name,
                        "Type": record_type,
                        "TTL": ttl,
                        "ResourceRecords": [{"Value": value}],
                    },
                }
            ],
        },
    )
    change_id = str(response["ChangeInfo"]["Id"])
    status = str(response["ChangeInfo"]["Status"])
    deadline = started + wait_s
    while status == "PENDING":
        if time.monotonic() >= deadline:
            raise TrafficError(
                f"Route53 change {change_id} for {where} is still PENDING after {human_duration(wait_s)}; "
                f"to proceed: check it with `aws route53 get-change --id {change_id}` and retry the task "
                f"(the UPSERT is idempotent)"
            )
        sleep(poll_s)
        status = str(route53.get_change(Id=change_id)["ChangeInfo"]["Status"])

    after = _read_record(route53, zone_id, record_name, record_type)
    new_values = [r["Value"] for r in (after or {}).get("ResourceRecords", [])]
    if after is None or not _same_values(record_type, new_values, [value]):
        raise TrafficError(
            f"Route53 reports change {change_id} {status}, but {where} reads back as {new_values or 'missing'} "
            f"instead of {value!r}; to proceed: check who else changes this record, then retry the task"
        )
    return _result(
        zone_id,
        record_name,
        record_type,
        old_values,
        old_ttl,
        value,
        ttl,
        change_id,
        status,
        True,
        time.monotonic() - started,
    )


def _plain_record(route53: Any, zone_id: str, record_name: str, record_type: str, where: str) -> dict[str, Any]:
    """The existing plain (not alias) record; refused when there is none, since drflow only moves one."""
    record = _read_record(route53, zone_id, record_name, record_type)
    if record is None:
        raise TrafficError(
            f"refused: there is no record {where}; to proceed: create the record that clients use today "
            f"(drflow switches an existing record so that the old value is kept for failback), "
            f"or fix record_name/record_type in the plan step",
            refused=True,
        )
    if "AliasTarget" in record:
        raise TrafficError(
            f"refused: {where} is an alias record (to {record['AliasTarget'].get('DNSName')}); "
            f"to proceed: switch a plain record, or point the alias at a plain record drflow switches",
            refused=True,
        )
    return record


# -- simulation records -------------------------------------------------------------------

SIMULATION_RECORD_LABEL = "drflow-simulation"


def simulation_record_name(record_name: str) -> str:
    """The record a simulation switches instead of ``record_name``: one label more, in the same zone."""
    return f"{SIMULATION_RECORD_LABEL}.{record_name}"


def create_simulation_record(
    route53: Any, hosted_zone_id: str, record_name: str, record_type: str, conn_id: str
) -> dict[str, Any]:
    """Copy the plan's record (type, TTL, values) to :func:`simulation_record_name` in the same zone (UPSERT,
    so a leftover of a killed simulation is reused). The plan's record is only read. Refused, as
    :func:`switch_dns` would refuse the real step, when that record is missing or an alias."""
    zone_id = _zone_id(hosted_zone_id)
    zone_name = _get_zone_name(route53, zone_id, conn_id)
    real = _plain_record(route53, zone_id, record_name, record_type, f"{record_name} {record_type} in {zone_name}")
    name = simulation_record_name(record_name)
    values = [r["Value"] for r in real.get("ResourceRecords", [])]
    record = {"Name": name, "Type": record_type, "TTL": real.get("TTL", 60), "ResourceRecords": real["ResourceRecords"]}
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Comment": f"drflow: simulation test record beside {record_name}",
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}],
        },
    )
    return {"hosted_zone_id": zone_id, "record_name": name, "record_type": record_type, "values": values}


def delete_record(route53: Any, hosted_zone_id: str, record_name: str, record_type: str) -> bool:
    """Delete the record as it is now; False when it is not there (already deleted)."""
    zone_id = _zone_id(hosted_zone_id)
    record = _read_record(route53, zone_id, record_name, record_type)
    if record is None:
        return False
    route53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}
    )
    return True


def _result(
    zone_id: str,
    record_name: str,
    record_type: str,
    old_values: list[str],
    old_ttl: int | None,
    value: str,
    ttl: int,
    change_id: str | None,
    status: str,
    changed: bool,
    wait_s: float,
) -> dict[str, Any]:
    return {
        "hosted_zone_id": zone_id,
        "record_name": record_name,
        "record_type": record_type,
        "old_values": old_values,
        "old_ttl": old_ttl,
        "new_values": [value],
        "ttl": ttl,
        "change_id": change_id,
        "status": status,
        "changed": changed,
        "switch_s": round(wait_s, 3),
    }


def _zone_id(hosted_zone_id: str) -> str:
    return hosted_zone_id.rsplit("/", 1)[-1]


def _get_zone_name(route53: Any, zone_id: str, conn_id: str) -> str:
    try:
        zone = route53.get_hosted_zone(Id=zone_id)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("NoSuchHostedZone", "InvalidInput"):
            raise TrafficError(
                f"refused: hosted zone {zone_id} does not exist for aws connection {conn_id!r}; to proceed: "
                f"fix hosted_zone_id in the plan step (list zones with `aws route53 list-hosted-zones`) "
                f"or point the connection at the right account",
                refused=True,
            ) from exc
        raise
    return str(zone["HostedZone"]["Name"])


def _read_record(route53: Any, zone_id: str, record_name: str, record_type: str) -> dict[str, Any] | None:
    page = route53.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=record_name, StartRecordType=record_type, MaxItems="1"
    )
    for record in page.get("ResourceRecordSets", []):
        if _dns_name(record["Name"]) == _dns_name(record_name) and record["Type"] == record_type:
            return dict(record)
    return None


def _dns_name(name: str) -> str:
    # Route53 answers with a trailing dot, lower case, and '*' escaped as \052.
    return name.replace("\\052", "*").rstrip(".").lower()


def _same_values(record_type: str, a: Sequence[str], b: Sequence[str]) -> bool:
    if record_type == "CNAME":
        return sorted(_dns_name(v) for v in a) == sorted(_dns_name(v) for v in b)
    return sorted(a) == sorted(b)


# -- HTTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResult:
    method: str
    url: str
    status: int
    elapsed_s: float
    body_tail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "elapsed_s": round(self.elapsed_s, 3),
            "body_tail": self.body_tail,
        }


def http_request(
    conn_id: str,
    method: str,
    endpoint: str = "",
    *,
    json_body: Any = None,
    timeout_s: float = 30.0,
) -> HttpResult:
    """One request through ``HttpHook`` (base URL, auth and headers from the connection); any status."""
    import requests
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method=method.upper(), http_conn_id=conn_id)
    url = hook.url_from_endpoint(endpoint)
    started = time.monotonic()
    try:
        response = hook.run(
            endpoint=endpoint,
            json=json_body,
            extra_options={"check_response": False, "timeout": timeout_s},
        )
    except requests.RequestException as exc:
        raise TrafficError(
            f"{method.upper()} {url} (connection {conn_id!r}) got no answer: {exc}; to proceed: check the "
            f"connection's host and port and that the service runs, then retry the task"
        ) from exc
    return HttpResult(
        method=method.upper(),
        url=url,
        status=int(response.status_code),
        elapsed_s=time.monotonic() - started,
        body_tail=response.text[-BODY_TAIL_CHARS:],
    )


def http_call(
    conn_id: str,
    method: str,
    endpoint: str = "",
    *,
    json_body: Any = None,
    expect_status: Sequence[int] = (200, 201, 202, 204),
    timeout_s: float = 30.0,
) -> HttpResult:
    """Call an endpoint (a load balancer's API, say); an unexpected status raises TrafficError."""
    result = http_request(conn_id, method, endpoint, json_body=json_body, timeout_s=timeout_s)
    if result.status not in expect_status:
        raise TrafficError(
            f"{result.method} {result.url} answered {result.status}, expected "
            f"{' or '.join(map(str, expect_status))}; body: {result.body_tail!r}; to proceed: fix what the "
            f"answer says (or the step's expect_status if the service answers this way on success), "
            f"then clear the task",
            refused=_client_error(result.status),
        )
    return result


def check_http(conn_id: str, endpoint: str = "/", *, expect_status: int = 200, timeout_s: float = 30.0) -> HttpResult:
    """GET a health endpoint; a status other than ``expect_status`` raises TrafficError."""
    result = http_request(conn_id, "GET", endpoint, timeout_s=timeout_s)
    if result.status != expect_status:
        raise TrafficError(
            f"health check GET {result.url} answered {result.status}, expected {expect_status}; body: "
            f"{result.body_tail!r}; to proceed: find out why the service is unhealthy on the recovery side "
            f"(its logs, its database connection), fix it and clear this task",
            refused=_client_error(result.status),
        )
    return result


def _client_error(status: int) -> bool:
    """A 4xx answer will not change on a retry; a 5xx or a redirect may (a service still starting)."""
    return 400 <= status < 500
