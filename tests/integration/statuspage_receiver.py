"""A Statuspage-compatible API on a free loopback port (a real ThreadingHTTPServer) that records every request.

It serves the sandbox's in-memory Statuspage subset (`drflow.devtools.sandbox.statuspage`): create, list,
update, postmortem; tests read the incidents it holds and the requests (with their Authorization header).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from drflow.devtools.sandbox.statuspage import StatuspageFake
from tests.integration.http_receiver import serving

API_KEY = "sp-test-key-0123456789"


@dataclass
class Call:
    method: str
    path: str
    authorization: str | None
    body: Any
    status: int


@dataclass
class StatuspageReceiver:
    port: int = 0
    api: StatuspageFake = field(default_factory=lambda: StatuspageFake(key=API_KEY))
    calls: list[Call] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def conn(self, key: str = API_KEY) -> str:
        """An ``AIRFLOW_CONN_*`` value (JSON) of the channel's http connection: base URL as host, key as password."""
        return json.dumps({"conn_type": "http", "host": self.base_url, "password": key})

    def incidents(self, page_id: str) -> list[dict[str, Any]]:
        return [i for i in self.api.incidents.values() if i["page_id"] == page_id]

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]


def _handler(receiver: StatuspageReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            url = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            status, answer = receiver.api.handle(self.command, url.path, query, body, dict(self.headers.items()))
            receiver.calls.append(Call(self.command, url.path, self.headers.get("Authorization"), body, status))
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve_statuspage() -> Iterator[StatuspageReceiver]:
    receiver = StatuspageReceiver()
    with serving(_handler(receiver)) as port:
        receiver.port = port
        yield receiver


@pytest.fixture
def statuspage() -> Iterator[StatuspageReceiver]:
    with serve_statuspage() as receiver:
        yield receiver
