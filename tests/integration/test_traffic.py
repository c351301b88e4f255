"""Traffic steps against real services: Route53 on the moto server, HTTP against a local server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from airflow.sdk.exceptions import AirflowFailException

from drflow.actions.traffic import TrafficError, check_http, http_call, switch_dns
from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY
from drflow.operators.traffic import HttpCallOperator, SwitchDnsOperator, ValidateHttpOperator
from tests.fixtures.s3 import MotoServer
from tests.integration.http_receiver import HttpReceiver, http_conn, http_receiver  # noqa: F401
from tests.plan_inputs import step_params


def params(step: dict[str, Any]) -> dict[str, Any]:
    """The step's task params as the plan builder writes them."""
    return step_params(step, spec_name="traffic-test")


@pytest.fixture
def route53(moto_server: MotoServer) -> Any:
    return boto3.client(
        "route53",
        endpoint_url=moto_server.endpoint_url,
        region_name=moto_server.region,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )


@pytest.fixture
def zone(route53: Any) -> Iterator[str]:
    """A fresh hosted zone with api.<zone> CNAME east.<zone>; deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}.example.com"
    zone_id = route53.create_hosted_zone(Name=f"{name}.", CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    _upsert(route53, zone_id, f"api.{name}", "CNAME", f"east.{name}")
    yield zone_id
    for record in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]:
        if record["Type"] not in ("NS", "SOA"):
            route53.change_resource_record_sets(
                HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}
            )
    route53.delete_hosted_zone(Id=zone_id)


def _upsert(route53: Any, zone_id: str, name: str, kind: str, value: str) -> None:
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": kind,
                        "TTL": 300,
                        "ResourceRecords": [{"Value": value}],
                    },
                }
            ]
        },
    )


def _zone_name(route53: Any, zone_id: str) -> str:
    return str(route53.get_hosted_zone(Id=zone_id)["HostedZone"]["Name"]).rstrip(".")


def _values(route53: Any, zone_id: str, name: str) -> list[str]:
    for record in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]:
        if record["Name"].rstrip(".") == name:
            return [r["Value"] for r in record["ResourceRecords"]]
    return []


def _switch_step(conn_id: str, zone_id: str, record: str, value: str) -> dict[str, Any]:
    return {
        "name": "switch-dns",
        "type": "automated",
        "action": "switch_dns",
        "conn_id": conn_id,
        "hosted_zone_id": zone_id,
        "record_name": record,
        "record_type": "CNAME",
        "value": value,
        "ttl": 60,
        "timeout": None,
    }


def test_switch_dns_operator_moves_the_record_and_keeps_the_old_value(s3_conn_id: str, zone: str, route53: Any) -> None:
    name = _zone_name(route53, zone)
    step = _switch_step(s3_conn_id, zone, f"api.{name}", f"west.{name}")
    result = SwitchDnsOperator(task_id="switch-dns", **params(step)).execute({})

    assert result["old_values"] == [f"east.{name}"]
    assert result["new_values"] == [f"west.{name}"]
    assert result["changed"] is True
    assert result["status"] == "INSYNC"
    assert _values(route53, zone, f"api.{name}") == [f"west.{name}"]

    # A retry after success finds the value in place and changes nothing.
    again = switch_dns(s3_conn_id, zone, f"api.{name}", "CNAME", f"west.{name}", 60)
    assert again["changed"] is False and again["old_values"] == [f"west.{name}"]


def test_switch_dns_refuses_a_missing_record_or_zone(s3_conn_id: str, zone: str, route53: Any) -> None:
    name = _zone_name(route53, zone)
    missing = _switch_step(s3_conn_id, zone, f"www.{name}", f"west.{name}")
    with pytest.raises(AirflowFailException, match=r"refused: there is no record www\..*to proceed: create"):
        SwitchDnsOperator(task_id="switch-dns", **params(missing)).execute({})

    with pytest.raises(TrafficError, match="refused: hosted zone ZNOSUCHZONE does not exist") as info:
        switch_dns(s3_conn_id, "ZNOSUCHZONE", f"api.{name}", "CNAME", f"west.{name}", 60)
    assert info.value.refused
    assert _values(route53, zone, f"api.{name}") == [f"east.{name}"]


class _SlowPropagation:
    """The real moto client, except that the change reports PENDING for its first status checks."""

    def __init__(self, client: Any, pending_checks: int) -> None:
        self._client = client
        self.pending_checks = pending_checks
        self.checks = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def change_resource_record_sets(self, **kwargs: Any) -> Any:
        response = self._client.change_resource_record_sets(**kwargs)
        response["ChangeInfo"]["Status"] = "PENDING"
        return response

    def get_change(self, **kwargs: Any) -> Any:
        self.checks += 1
        response = self._client.get_change(**kwargs)
        if self.checks <= self.pending_checks:
            response["ChangeInfo"]["Status"] = "PENDING"
        return response


def test_switch_dns_waits_for_insync_and_gives_up_after_the_bound(zone: str, route53: Any) -> None:
    name = _zone_name(route53, zone)
    slow = _SlowPropagation(route53, pending_checks=2)
    result = switch_dns("unused", zone, f"api.{name}", "CNAME", f"west.{name}", 60, client=slow, poll_s=0.01)
    assert slow.checks == 3 and result["status"] == "INSYNC"

    stuck = _SlowPropagation(route53, pending_checks=10**6)
    with pytest.raises(TrafficError, match=r"still PENDING after 0.2s.*get-change") as info:
        switch_dns("unused", zone, f"api.{name}", "CNAME", f"north.{name}", 60, client=stuck, wait_s=0.2, poll_s=0.05)
    assert not info.value.refused


@pytest.fixture
def lb_conn(http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    monkeypatch.setenv("AIRFLOW_CONN_DRFLOW_TEST_LB", http_conn(http_receiver))
    return "drflow_test_lb"


def test_http_call_operator_sends_the_step_body(http_receiver: HttpReceiver, lb_conn: str) -> None:  # noqa: F811
    http_receiver.statuses["/pools/api/switch"] = 202
    step = {
        "name": "drain-east",
        "action": "http_call",
        "conn_id": lb_conn,
        "method": "POST",
        "endpoint": "/pools/api/switch",
        "json": {"active": "us-west-2"},
        "expect_status": [200, 202],
        "timeout": "10s",
    }
    result = HttpCallOperator(task_id="drain-east", **params(step)).execute({})
    assert result["status"] == 202
    [received] = http_receiver.on("/pools/api/switch")
    assert received.method == "POST" and received.json() == {"active": "us-west-2"}

    http_receiver.statuses["/pools/api/switch"] = 409
    with pytest.raises(AirflowFailException, match=r"answered 409, expected 200 or 202"):
        HttpCallOperator(task_id="drain-east", **params(step)).execute({})


def test_validate_http_passes_on_the_expected_status_and_fails_otherwise(
    http_receiver: HttpReceiver,  # noqa: F811
    lb_conn: str,
) -> None:
    step = {
        "name": "health",
        "action": "validate_http",
        "conn_id": lb_conn,
        "endpoint": "/health",
        "expect_status": 200,
    }
    assert ValidateHttpOperator(task_id="health", **params(step)).execute({})["passed"] is True

    # 503 may clear up (a service still starting): a plain error, so Airflow's retries apply.
    http_receiver.statuses["/health"] = 503
    with pytest.raises(TrafficError, match=r"answered 503, expected 200.*unhealthy") as info:
        ValidateHttpOperator(task_id="health", **params(step)).execute({})
    assert not info.value.refused
    # 404 will not: fail at once.
    http_receiver.statuses["/health"] = 404
    with pytest.raises(AirflowFailException, match="answered 404"):
        ValidateHttpOperator(task_id="health", **params(step)).execute({})


def test_http_without_an_answer_says_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures.s3 import free_port

    monkeypatch.setenv(
        "AIRFLOW_CONN_DRFLOW_TEST_DOWN",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": free_port()}),
    )
    with pytest.raises(TrafficError, match=r"got no answer.*check the connection's host and port"):
        check_http("drflow_test_down", "/health", timeout_s=2)
    with pytest.raises(TrafficError, match="got no answer"):
        http_call("drflow_test_down", "POST", "/x", timeout_s=2)
