"""A local S3 (moto server) for the sandbox and the tests.

The server runs as a detached process in its own session so that it outlives
the command that started it (``drflow sandbox up``); the tests start and stop
it themselves.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from drflow.devtools.sandbox.servers import start_server, stop_server

DUMMY_ACCESS_KEY = "testing"
DUMMY_SECRET_KEY = "testing"


class MotoError(RuntimeError):
    """The sandbox's moto server cannot be started or used; the message says what to do."""


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


def require_moto() -> None:
    """Refuse early, saying what to install, when moto (drflow's `sandbox` extra) is missing."""
    if importlib.util.find_spec("moto") is None:
        raise MotoError(
            f"the sandbox's S3 needs moto, which is not installed in {sys.prefix}; "
            "install drflow with its sandbox extra: pip install 'drflow[sandbox]'"
        )


def start_moto_server(port: int, log_path: Path, timeout: float = 60.0) -> int:
    """Start ``python -m moto.server`` on 127.0.0.1:port and return its pid once it answers."""
    if is_moto_running(port):
        raise MotoError(f"a moto server already answers on port {port}; stop it first or choose another port")
    require_moto()
    return start_server(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        log_path=log_path,
        answers=lambda: is_moto_running(port),
        timeout=timeout,
        what=f"moto server on port {port}",
        error=MotoError,
    )


def stop_moto_server(pid: int, timeout: float = 10.0) -> None:
    """Stop a moto server started by start_moto_server (SIGTERM, then SIGKILL). Missing pid is fine."""
    stop_server(pid, timeout)


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
