"""A local S3 (moto server) for the sandbox and the tests.

The server runs as a detached process in its own session so that it outlives
the command that started it (``drflow sandbox up``); the tests start and stop
it themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

DUMMY_ACCESS_KEY = "testing"
DUMMY_SECRET_KEY = "testing"


class MotoError(RuntimeError):
    """The sandbox's moto server cannot be started or used; the message says what to do."""


# Popen objects of servers started by this process, kept so that stopping one
# reaps it (no zombie) and Python does not warn about a still-running child.
_children: dict[int, subprocess.Popen[bytes]] = {}


def endpoint_url_for(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def is_moto_running(port: int, timeout: float = 1.0) -> bool:
    """True when a moto server answers on 127.0.0.1:port."""
    try:
        with urllib.request.urlopen(f"{endpoint_url_for(port)}/moto-api/config", timeout=timeout) as resp:
            json.loads(resp.read())  # moto answers this with 201 and its config as JSON
            return 200 <= int(resp.status) < 300
    except (OSError, ValueError):
        return False


def start_moto_server(port: int, log_path: Path, timeout: float = 60.0) -> int:
    """Start ``python -m moto.server`` on 127.0.0.1:port and return its pid once it answers."""
    if is_moto_running(port):
        raise MotoError(f"a moto server already answers on port {port}; stop it first or choose another port")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _children[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _children.pop(proc.pid, None)
            raise MotoError(
                f"moto server on port {port} exited with code {proc.returncode} before answering; "
                f"see {log_path}:\n{_tail(log_path)}"
            )
        if is_moto_running(port):
            return proc.pid
        time.sleep(0.1)
    stop_moto_server(proc.pid)
    raise MotoError(
        f"moto server on port {port} did not answer within {timeout:.0f}s; see {log_path}:\n{_tail(log_path)}"
    )


def stop_moto_server(pid: int, timeout: float = 10.0) -> None:
    """Stop a moto server started by start_moto_server (SIGTERM, then SIGKILL). Missing pid is fine."""
    proc = _children.pop(pid, None)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        if proc is not None:
            proc.wait()
        return
    if _wait_gone(pid, proc, timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, proc, timeout)


def create_buckets(
    endpoint_url: str, names: Iterable[str], region: str = "us-east-1", *, object_lock: bool = False
) -> None:
    """Create buckets (idempotently) on a moto endpoint with dummy credentials; ``object_lock``: with S3 Object
    Lock enabled (and so versioning), as compliance and governance retention need."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )
    for name in names:
        try:
            lock = {"ObjectLockEnabledForBucket": True} if object_lock else {}
            if region == "us-east-1":
                client.create_bucket(Bucket=name, **lock)
            else:
                client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}, **lock)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass


def aws_conn_uri_json(endpoint_url: str, region: str = "us-east-1") -> str:
    """The value of an ``AIRFLOW_CONN_<ID>`` env var pointing the amazon provider at a moto endpoint."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": DUMMY_ACCESS_KEY,
            "password": DUMMY_SECRET_KEY,
            "extra": {"endpoint_url": endpoint_url, "region_name": region},
        }
    )


def _wait_gone(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    if proc is not None:
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    # Not our child (started by an earlier command): poll until it is gone.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
