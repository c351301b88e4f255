"""The sandbox creates the Route53 zone and record that the example region-failover plan switches."""

from __future__ import annotations

from pathlib import Path

from drflow.devtools.sandbox.dns import ensure_records, route53, switch_dns_steps
from drflow.spec.load import load_spec
from tests.fixtures.s3 import MotoServer

EXAMPLE = Path(__file__).resolve().parents[2] / "plan_specs" / "api-marketplace.yaml"


def test_the_example_zone_gets_the_id_the_spec_names_and_a_record_to_switch(moto_server: MotoServer) -> None:
    [step] = switch_dns_steps(load_spec(EXAMPLE).spec)
    first = ensure_records(moto_server.endpoint_url, [step])
    again = ensure_records(moto_server.endpoint_url, [step])  # idempotent: `drflow sandbox up` twice
    assert first == again == [{"hosted_zone_id": step["hosted_zone_id"], "record": f"{step['record_name']} CNAME"}]
    client = route53(moto_server.endpoint_url)
    records = client.list_resource_record_sets(HostedZoneId=step["hosted_zone_id"])["ResourceRecordSets"]
    [record] = [r for r in records if r["Name"] == step["record_name"] and r["Type"] == "CNAME"]
    assert record["ResourceRecords"] == [{"Value": "primary.api-marketplace.internal."}]
    assert record["ResourceRecords"][0]["Value"] != step["value"]  # the failover has something to switch
