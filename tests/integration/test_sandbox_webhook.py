"""The sandbox's webhook receiver: every chat/webhook channel of the shipped specs has a connection that delivers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from drflow.devtools.sandbox.control import notification_channels
from drflow.devtools.sandbox.webhook import (
    channel_connections,
    is_running,
    read_received,
    start_receiver,
    stop_receiver,
)
from drflow.engines.postgres.cluster import free_port
from drflow.notifiers import build_notifiers

SPECS = sorted((Path(__file__).resolve().parents[2] / "plan_specs").rglob("*.yaml"))


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    out = tmp_path / "received.jsonl"
    pid = start_receiver(port, out, tmp_path / "webhook.log")
    try:
        yield port, out
    finally:
        stop_receiver(pid)
    assert not is_running(port)


@pytest.mark.parametrize("spec_path", SPECS, ids=[p.name for p in SPECS])
def test_every_chat_channel_of_the_shipped_specs_delivers_to_the_sandbox(
    spec_path: Path, receiver: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, out = receiver
    channels = notification_channels(spec_path)
    connections = channel_connections(channels, port)
    assert len(connections) == len([c for c in channels.values() if c["type"] in ("slack", "webhook", "statuspage")])
    for name, value in connections.items():
        monkeypatch.setenv(name, value)
    plan = {
        "spec": spec_path.stem,
        "plan": "sandbox-check",
        "scenario": "infrastructure-failure",
        "rto_s": 900,
        "rpo_s": 300,
        "service": "API Marketplace",
        "notifications": {name: {**c, "to": [], "events": ["activation"]} for name, c in channels.items()},
        "notify": list(channels),
    }
    context = {
        "dag_run": SimpleNamespace(
            dag_id="d", run_id="r", state="running", conf={}, triggering_user_name="alice", start_date=None
        ),
        "params": {"reason": "sandbox check"},
    }
    for notifier in build_notifiers(plan, "activation"):
        notifier.notify(context)  # raises if the channel cannot deliver
    received = read_received(out)
    chat = [entry for entry in received if "method" not in entry]
    assert sorted(entry["path"] for entry in chat) == sorted(
        f"/{name}" for name, c in channels.items() if c["type"] in ("slack", "webhook")
    )
    assert all("activated by alice" in json.dumps(entry["body"]) for entry in chat)
    # A statuspage channel opens an incident on the sandbox's status page, with its incident template.
    pages = [entry for entry in received if "method" in entry]
    assert [(e["method"], e["path"]) for e in pages] == [
        ("POST", f"/v1/pages/{c['page_id']}/incidents") for c in channels.values() if c["type"] == "statuspage"
    ]
    for entry in pages:
        assert entry["body"]["incident"]["status"] == "investigating" and "{" not in entry["body"]["incident"]["body"]
