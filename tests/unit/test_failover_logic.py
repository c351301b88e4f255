"""Failover logic that needs no server: refusal wording, slot names, config edits, the assessment summary."""

from __future__ import annotations

from typing import Any

from drflow.engines.postgres.assess import summary_markdown
from drflow.engines.postgres.checks import as_text, matches, mismatch_lines
from drflow.engines.postgres.lsn import format_lsn, parse_lsn
from drflow.engines.postgres.rebuild import remove_settings, slot_name_for
from drflow.engines.postgres.refusal import LagExceeded, Refused


def test_refusals_say_why_and_what_unblocks_them() -> None:
    exc = LagExceeded("replica r is 9.0s behind", "wait until it catches up", {"lag_s": 9.0})
    assert isinstance(exc, Refused)
    assert str(exc) == "refused: replica r is 9.0s behind; to proceed: wait until it catches up"
    assert exc.details == {"lag_s": 9.0}


def test_lsn_round_trip() -> None:
    assert parse_lsn("1/2A0") == (1 << 32) + 0x2A0
    assert format_lsn(parse_lsn("AB/CDEF0123")) == "AB/CDEF0123"


def test_slot_names_are_valid_postgres_slot_names() -> None:
    assert slot_name_for("Replica-EU.1") == "drflow_replica_eu_1"
    assert len(slot_name_for("x" * 100)) == 63


def test_removing_a_fence_setting_keeps_everything_else() -> None:
    conf = "# keep\nport = 5433\ndefault_transaction_read_only = 'on'\n#default_transaction_read_only = on\n"
    text, removed = remove_settings(conf, frozenset({"default_transaction_read_only"}))
    assert removed == ["default_transaction_read_only = 'on'"]
    assert text == "# keep\nport = 5433\n#default_transaction_read_only = on\n"
    assert remove_settings(text, frozenset({"default_transaction_read_only"})) == (text, [])


def test_check_values_compare_as_text_and_booleans_loosely() -> None:
    assert as_text(None) == "NULL" and as_text(True) == "true" and as_text(5) == "5"
    assert matches(True, "t") and matches(False, "off") and not matches(True, "false")
    assert matches(42, " 42 ") and not matches(42, "42.0")
    report: dict[str, Any] = {
        "checks": [
            {"name": "ok", "passed": True, "expected": "1", "actual": "1"},
            {"name": "count", "passed": False, "expected": "5", "actual": "4"},
            {"name": "broken", "passed": False, "expected": "1", "actual": None, "error": "no such table"},
        ]
    }
    assert mismatch_lines(report) == ["count: expected '5', got '4'", "broken: expected '1', error: no such table"]


def _replica(name: str, gate: str, lag: float | None, refusal: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "health": {"reachable": True, "in_recovery": True, "wal_receiver": "streaming", "timeline": 1},
        "lag_s": lag,
        "lag_bytes": 0,
        "lag_upper_bound": False,
        "gate": gate,
        "refusal": refusal,
        "unblock": None if refusal is None else "wait until it catches up",
    }


def test_assessment_summary_names_state_lag_backup_and_plan() -> None:
    result: dict[str, Any] = {
        "component": "orders-db",
        "checked_at": "2026-03-01T10:00:00.123456+00:00",
        "rpo_s": 300,
        "primary": {"node": "primary", "server": "pg@h:5432/app", "reachable": False, "error": "timeout"},
        "replicas": [_replica("eu", "passes", 0.0), _replica("us", "refused", 900.0, "us is 15m behind")],
        "candidates": ["eu"],
        "newest_backup": {"backup_id": "daily-1", "finished_at": "2026-03-01T09:00:00+00:00", "age_s": 3600.0},
        "plan_steps": [{"name": "promote", "action": "promote", "description": "Promote eu"}],
    }
    text = summary_markdown(result)
    assert text.startswith("### Assessment of `orders-db` (2026-03-01T10:00:00Z, RPO 5m)")
    assert "`primary` (pg@h:5432/app) **unreachable**: timeout" in text
    assert "| `eu` | streaming, replaying, timeline 1 | 0s | passes |" in text
    assert "| `us` |" in text and "**refused**: us is 15m behind" in text
    assert "`daily-1` finished 2026-03-01T09:00:00+00:00, 1h ago" in text
    assert "would pass the lag gate on `eu`" in text and "1. `promote` (promote): Promote eu" in text
    result["candidates"] = []
    assert "**no replica passes the lag gate now**" in summary_markdown(result)


def test_a_rebuild_refuses_a_source_without_a_replication_connection() -> None:
    import pytest
    from airflow.sdk.exceptions import AirflowFailException

    from drflow.operators.failover import RebuildReplicaOperator
    from tests.plan_inputs import SHOP, task_params

    # Validation refuses such a spec; a DAG built before that check still must not stream as the admin.
    params = task_params(SHOP, ".plan.failover", "rebuild")
    params["plan"]["components"]["orders"]["nodes"]["replica-1"]["replication_conn_id"] = None
    op = RebuildReplicaOperator(task_id="rebuild", **params)
    with pytest.raises(AirflowFailException) as raised:
        op.replication_conn("replica-1")
    assert str(raised.value).startswith("refused: node replica-1 of orders names no replication connection")
    assert "set replication_conn_id on node replica-1 in the spec" in str(raised.value)
