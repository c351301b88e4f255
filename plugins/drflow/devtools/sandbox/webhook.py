"""A local receiver for the sandbox's chat and webhook notification channels.

``drflow sandbox up`` starts it (``python -m drflow.devtools.sandbox.webhook``) as a detached process on a fixed
loopback port and points every slack and webhook channel of the spec at it: channel ``oncall-slack``
posts to ``http://127.0.0.1:<port>/oncall-slack``. Each request is appended to ``received.jsonl`` in the
sandbox directory (one JSON object a line: time, path, body), so people and tests can read what a plan
run announced. It answers 200 ``ok``, as Slack does. Statuspage channels get the Statuspage API subset
(:mod:`drflow.devtools.sandbox.statuspage`) under ``/v1/pages/…``; their requests are recorded too (with
the method).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from drflow.devtools.sandbox import statuspage
from drflow.devtools.sandbox.servers import start_server, stop_server

HEALTH_PATH = "/-/health"
CHANNEL_TYPES = ("slack", "webhook")
STATUSPAGE_PREFIX = "/v1/pages/"


def is_running(port: int, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=timeout) as response:
            return bool(json.loads(response.read()).get("drflow_webhook_receiver"))
    except (OSError, ValueError):
        return False


def channel_url(port: int, channel: str) -> str:
    return f"http://127.0.0.1:{port}/{channel}"


def channel_connections(channels: Mapping[str, Mapping[str, Any]], port: int) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values for the slack, webhook and statuspage channels (name -> {type, conn_id})."""
    connections = {}
    for name, channel in channels.items():
        env = f"AIRFLOW_CONN_{str(channel['conn_id']).upper()}"
        if channel.get("type") in CHANNEL_TYPES:
            connections[env] = json.dumps({"conn_type": "http", "host": channel_url(port, name)})
        elif channel.get("type") == "statuspage":
            conn = {"conn_type": "http", "host": f"http://127.0.0.1:{port}", "password": statuspage.API_KEY}
            connections[env] = json.dumps(conn)
    return connections


def start_receiver(port: int, out: Path, log_path: Path, timeout: float = 30.0) -> int:
    """Start the receiver as a detached process; its pid once it answers."""
    if is_running(port):
        raise RuntimeError(f"a webhook receiver already answers on port {port}; stop it first or choose another port")
    out.parent.mkdir(parents=True, exist_ok=True)
    return start_server(
        [sys.executable, "-m", "drflow.devtools.sandbox.webhook", "--port", str(port), "--out", str(out)],
        log_path=log_path,
        answers=lambda: is_running(port),
        timeout=timeout,
        what=f"the webhook receiver on port {port}",
        error=RuntimeError,
    )


def stop_receiver(pid: int) -> None:
    stop_server(pid)


def read_received(out: Path) -> list[dict[str, Any]]:
    try:
        lines = out.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def serve(port: int, out: Path, host: str = "127.0.0.1") -> None:
    lock = threading.Lock()
    pages = statuspage.StatuspageFake()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith(STATUSPAGE_PREFIX):
                self._statuspage(None)
                return
            self._reply(200, {"drflow_webhook_receiver": True} if self.path == HEALTH_PATH else {"ok": True})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body: Any = json.loads(raw or b"null")
            except ValueError:
                body = raw.decode(errors="replace")
            entry = {"at": datetime.now(UTC).isoformat(), "path": self.path, "body": body}
            if self.path.startswith(STATUSPAGE_PREFIX):
                entry["method"] = self.command
            with lock, out.open("a") as file:
                file.write(json.dumps(entry) + "\n")
            if self.path.startswith(STATUSPAGE_PREFIX):
                self._statuspage(body)
            else:
                self._reply(200, "ok")

        do_PUT = do_PATCH = do_POST

        def _statuspage(self, body: Any) -> None:
            url = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            status, answer = pages.handle(self.command, url.path, query, body, dict(self.headers.items()))
            self._reply(status, answer)

        def _reply(self, status: int, payload: Any) -> None:
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer((host, port), Handler).serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (the compose stack: 0.0.0.0)")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    serve(args.port, args.out, args.host)


if __name__ == "__main__":
    main()
