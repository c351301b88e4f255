"""Check-only twins of the traffic steps: would `switch_dns`, `http_call` or `validate_http` work now?

Nothing is changed or called: the DNS check reads the zone and the record (Route53 reads only), the HTTP
checks only open a TCP connection to the connection's host and port (a request could have effects).
Each returns ``{"ok": bool, "detail": str, ...}``.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from drflow.actions.traffic import RECORD_TYPES, TrafficError, _get_zone_name, _read_record, _zone_id, route53_client

TCP_TIMEOUT_S = 5.0


def switch_dns_ready(
    conn_id: str, hosted_zone_id: str, record_name: str, record_type: str, value: str, *, client: Any = None
) -> dict[str, Any]:
    """The zone exists and holds the plain record the step would move (so there is a value to fail back to)."""
    if record_type not in RECORD_TYPES:
        return {"ok": False, "detail": f"record type {record_type} cannot be switched; use {', '.join(RECORD_TYPES)}"}
    try:
        route53 = client if client is not None else route53_client(conn_id)
        zone_id = _zone_id(hosted_zone_id)
        zone_name = _get_zone_name(route53, zone_id, conn_id)
        record = _read_record(route53, zone_id, record_name, record_type)
    except TrafficError as exc:
        return {"ok": False, "detail": str(exc)}
    except Exception as exc:  # credentials, endpoint, network: the step would fail the same way
        return {"ok": False, "detail": f"Route53 cannot be read through connection {conn_id!r}: {exc}"}
    where = f"{record_name} {record_type} in zone {zone_id} ({zone_name})"
    if record is None:
        return {"ok": False, "detail": f"there is no record {where}: the switch refuses to create one", "zone": zone_id}
    if "AliasTarget" in record:
        return {"ok": False, "detail": f"{where} is an alias record: the switch moves plain records only"}
    current = [r["Value"] for r in record.get("ResourceRecords", [])]
    now = "already points at the new value" if value.rstrip(".") in [v.rstrip(".") for v in current] else "exists"
    return {"ok": True, "detail": f"{where} {now} ({', '.join(current)})", "current": current, "zone": zone_id}


def tcp_ready(conn_id: str, base_url: str, *, timeout_s: float = TCP_TIMEOUT_S) -> dict[str, Any]:
    """The host and port of ``base_url`` (the http connection's) accept a TCP connection; no request is sent."""
    parts = urlsplit(base_url if "://" in base_url else f"http://{base_url}")
    host = parts.hostname
    if not host:
        return {"ok": False, "detail": f"http connection {conn_id!r} has no host"}
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        return {"ok": False, "detail": f"{host}:{port} (connection {conn_id!r}) does not accept connections: {exc}"}
    return {"ok": True, "detail": f"{host}:{port} (connection {conn_id!r}) accepts connections; no request sent"}
