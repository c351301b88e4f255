"""How the sandbox judges its servers' real roles, and which server's data a reset keeps (pure decisions)."""

from __future__ import annotations

from typing import Any

from drflow.devtools.sandbox.reset import data_to_keep
from drflow.devtools.sandbox.roles import describe, problems


def facts(name: str, port: int, role: str, **more: Any) -> dict[str, Any]:
    base = {"name": name, "port": port, "role": role, "initialized": True, "writable": False, "fenced": False}
    return {**base, "streaming": False, "timeline": 1, **more}


HEALTHY = {
    "primary": facts("primary", 5001, "primary", writable=True),
    "replica": facts("replica", 5002, "standby", streaming=True, upstream="127.0.0.1:5001", lsn="0/3000000"),
}
AFTER_FAILOVER = {
    "primary": facts("primary", 5001, "primary", fenced=True),
    "replica": facts("replica", 5002, "primary", writable=True, timeline=2),
}


def test_a_writable_primary_with_a_replica_streaming_from_it_is_the_layout() -> None:
    assert problems(HEALTHY["primary"], HEALTHY["replica"]) == []
    assert describe(HEALTHY["primary"]) == "writable primary, timeline 1"
    assert describe(HEALTHY["replica"]) == "standby streaming from 127.0.0.1:5001, timeline 1, replayed up to 0/3000000"


def test_after_a_failover_both_servers_are_named_with_what_they_are_now() -> None:
    assert problems(AFTER_FAILOVER["primary"], AFTER_FAILOVER["replica"]) == [
        "the primary (port 5001) refuses writes (fenced: default_transaction_read_only = on)",
        "the replica (port 5002) was promoted and writable: it is a primary now",
    ]
    assert describe(AFTER_FAILOVER["primary"]).startswith("primary fenced read-only")
    stopped = facts("primary", 5001, "stopped")
    assert problems(stopped, HEALTHY["replica"])[0] == "the primary (port 5001) is stopped"
    elsewhere = facts("replica", 5002, "standby", streaming=True, upstream="127.0.0.1:7777")
    assert problems(HEALTHY["primary"], elsewhere) == [
        "the replica (port 5002) streams from 127.0.0.1:7777, not from the primary"
    ]


def test_a_reset_keeps_the_newest_primary_and_the_layouts_on_a_tie() -> None:
    assert data_to_keep(AFTER_FAILOVER) == "replica"  # promoted: a newer timeline
    assert data_to_keep(HEALTHY) == "primary"
    split = {"primary": facts("primary", 1, "primary", writable=True), "replica": facts("replica", 2, "primary")}
    assert data_to_keep(split) == "primary"
    both_standbys = {"primary": facts("primary", 1, "standby"), "replica": facts("replica", 2, "standby")}
    assert data_to_keep(both_standbys) is None
