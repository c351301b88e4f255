"""Route53 in the sandbox's moto server: the hosted zones and records that a spec's switch_dns steps switch.

A spec names a hosted zone by id, and moto makes zone ids up at random. The sandbox seeds moto's random
generator with SANDBOX_ZONE_SEED right before creating a zone, which makes the id reproducible: the
API Marketplace spec holds that id. Each record gets a "before the failover" value (the primary's name)
so that a switch has something to switch from.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, MotoError

SANDBOX_ZONE_SEED = 4242
INITIAL_VALUES = {"A": "127.0.0.1", "AAAA": "::1"}


def switch_dns_steps(spec: Any) -> list[dict[str, Any]]:
    """Every switch_dns step of the spec's recovery plans, as JSON."""
    return [
        step.model_dump(mode="json", by_alias=True)
        for plan in spec.recovery_plans
        for step in plan.steps
        if getattr(step, "action", None) == "switch_dns"
    ]


def zone_name(record_name: str) -> str:
    """The zone a record lives in: its name without the first label (db.example.internal. → example.internal.)."""
    labels = record_name.rstrip(".").split(".")
    return ".".join(labels[1:]) + "." if len(labels) > 2 else record_name.rstrip(".") + "."


def route53(endpoint_url: str) -> Any:
    import boto3

    return boto3.client(
        "route53",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )


def ensure_records(endpoint_url: str, steps: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Create the zones and records the steps switch (idempotent); return what exists."""
    client = route53(endpoint_url)
    made = []
    for step in steps:
        record = _Record(step)
        _ensure_zone(endpoint_url, client, record.zone_id, zone_name(record.name))
        if record.values(client) is None:
            record.put(client, "CREATE")
        made.append({"hosted_zone_id": record.zone_id, "record": f"{record.name} {record.type}"})
    return made


def reset_records(endpoint_url: str, steps: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Put every record the steps switch back to its "before the failover" value; the ones that had moved."""
    client = route53(endpoint_url)
    moved = []
    for step in steps:
        record = _Record(step)
        current = record.values(client)
        if current != [record.initial]:
            record.put(client, "UPSERT")
            was = ", ".join(current or []) or "-"
            moved.append({"record": f"{record.name} {record.type}", "from": was, "to": record.initial})
    return moved


class _Record:
    """The record one switch_dns step switches, and its value before any failover."""

    def __init__(self, step: Mapping[str, Any]) -> None:
        self.zone_id = str(step["hosted_zone_id"]).rsplit("/", 1)[-1]
        self.name, self.type = str(step["record_name"]), str(step.get("record_type") or "CNAME")
        self.ttl = int(step.get("ttl") or 60)
        self.initial = INITIAL_VALUES.get(self.type, f"primary.{zone_name(self.name)}")

    def values(self, client: Any) -> list[str] | None:
        """The record's values, or None when it does not exist."""
        page = client.list_resource_record_sets(
            HostedZoneId=self.zone_id, StartRecordName=self.name, StartRecordType=self.type, MaxItems="1"
        )
        for found in page.get("ResourceRecordSets", []):
            if found["Name"].rstrip(".") == self.name.rstrip(".") and found["Type"] == self.type:
                return [str(value["Value"]) for value in found.get("ResourceRecords", [])]
        return None

    def put(self, client: Any, action: str) -> None:
        """CREATE or UPSERT the record with its initial value."""
        rrset = {"Name": self.name, "Type": self.type, "TTL": self.ttl, "ResourceRecords": [{"Value": self.initial}]}
        client.change_resource_record_sets(
            HostedZoneId=self.zone_id, ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": rrset}]}
        )


def _ensure_zone(endpoint_url: str, client: Any, zone_id: str, name: str) -> None:
    zones = client.list_hosted_zones().get("HostedZones", [])
    if any(zone["Id"].rsplit("/", 1)[-1] == zone_id for zone in zones):
        return
    seed = urllib.request.Request(f"{endpoint_url}/moto-api/seed?a={SANDBOX_ZONE_SEED}", method="POST")
    with urllib.request.urlopen(seed, timeout=10):
        pass
    created = client.create_hosted_zone(Name=name, CallerReference=f"drflow-sandbox-{zone_id}")
    got = created["HostedZone"]["Id"].rsplit("/", 1)[-1]
    if got != zone_id:
        client.delete_hosted_zone(Id=got)
        raise MotoError(
            f"moto created hosted zone {name} with id {got}, but the spec's switch_dns step names {zone_id}: "
            f"this moto version makes other ids from seed {SANDBOX_ZONE_SEED}; set hosted_zone_id: {got} in the "
            "spec's switch_dns steps, or create the zone yourself and use its id"
        )
