"""What functional and performance checks measure over the network: HTTP answers and TCP connects.

Measurements only, no verdicts (the suite compares them with the spec's limits). An address is an Airflow
http connection (base URL, basic auth, headers, read through :mod:`drflow.connections`, so it works in
tasks and on the CLI alike) or a plain URL. Requests go through ``requests`` with one session per check,
so N requests reuse a kept-alive connection, as a client of the service would.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Any

BODY_KEEP_CHARS = 64 * 1024
"""The body a check may match against (the start of it); reports show a shorter tail."""
# Ports of connection types that name none, for TCP reachability of integration points.
DEFAULT_PORTS = {
    "postgres": 5432,
    "mysql": 3306,
    "redis": 6379,
    "smtp": 25,
    "ssh": 22,
    "sftp": 22,
    "ftp": 21,
    "amqp": 5672,
    "kafka": 9092,
    "mongo": 27017,
    "http": 80,
    "https": 443,
}


@dataclass(frozen=True)
class HttpTarget:
    """A resolved address: the URL to call and what the connection adds to each request."""

    url: str
    auth: tuple[str, str] | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class HttpAnswer:
    """One request: the status (None when nothing answered), how long it took, the body's start or the error."""

    url: str
    status: int | None
    elapsed_s: float
    body: str = ""
    error: str | None = None


def resolve(conn_id: str | None, url: str | None, endpoint: str = "") -> HttpTarget:
    """The URL of a check's address: the connection's base (and its auth and headers) or the URL, plus endpoint."""
    if conn_id:
        from drflow.connections import http_base

        base = http_base(conn_id)
        return HttpTarget(url=base.join(endpoint), auth=base.auth, headers=base.headers)
    if not url:
        raise ValueError("an HTTP check needs a conn_id or a url; set one in the spec")
    return HttpTarget(url=url.rstrip("/") + "/" + endpoint.lstrip("/") if endpoint else url)


def request(target: HttpTarget, *, method: str = "GET", timeout_s: float = 10.0, session: Any = None) -> HttpAnswer:
    """One request; a refused connection or a timeout is an answer without a status, never an exception."""
    import requests

    client = session if session is not None else requests
    started = time.perf_counter()
    try:
        response = client.request(
            method, target.url, auth=target.auth, headers=target.headers, timeout=timeout_s, allow_redirects=False
        )
    except requests.RequestException as exc:
        return HttpAnswer(target.url, None, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - started
    return HttpAnswer(target.url, int(response.status_code), elapsed, body=response.text[:BODY_KEEP_CHARS])


def requests_in_a_row(target: HttpTarget, count: int, *, timeout_s: float = 10.0) -> list[HttpAnswer]:
    """``count`` GET requests one after the other on one kept-alive session."""
    import requests

    with requests.Session() as session:
        return [request(target, timeout_s=timeout_s, session=session) for _ in range(count)]


@dataclass(frozen=True)
class TcpAnswer:
    host: str
    port: int
    elapsed_s: float
    error: str | None = None


def tcp_connect(host: str, port: int, *, timeout_s: float = 5.0) -> TcpAnswer:
    """Open (and close) a TCP connection: the service listens and the network lets the worker through."""
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        return TcpAnswer(host, port, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    return TcpAnswer(host, port, time.perf_counter() - started)


def connection_endpoint(conn_id: str) -> tuple[str, str, int | None]:
    """An Airflow connection's type, host and port (the type's usual port when it names none)."""
    from drflow.connections import get_connection

    conn = get_connection(conn_id)
    kind = conn.conn_type or ""
    host = conn.host or ""
    if "://" in host:
        host = host.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
    return kind, host, conn.port or DEFAULT_PORTS.get(kind)
