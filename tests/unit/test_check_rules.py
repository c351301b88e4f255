"""What a check may be, and how its value compares (no database needed)."""

from __future__ import annotations

import pytest

from drflow.engines.postgres.checks import matches, refusal, timeout_seconds
from drflow.spec.model import ValidationQuery
from drflow.spec.plans import ValidateSqlAction


@pytest.mark.parametrize(
    "query",
    ["select 1", "  SELECT 1", "-- c\n/* d */ (select 1)", "with x as (select 1) select * from x", "show port"],
)
def test_queries_that_may_run(query: str) -> None:
    assert refusal(query) is None


@pytest.mark.parametrize("query", ["commit; select 1", "set x = 1", "copy t to stdout", "do $$ begin end $$", ""])
def test_statements_refused_before_sending(query: str) -> None:
    why = refusal(query)
    assert why and "rewrite it as a single select" in why


def test_expected_true_reads_the_same_in_drills_and_validate_sql_steps() -> None:
    drill = ValidationQuery.model_validate({"name": "a", "query": "select true", "expected": True})
    step = ValidateSqlAction.model_validate(
        {
            "name": "v",
            "action": "validate_sql",
            "component": "c",
            "node": "restored",
            "checks": [{"name": "a", "query": "select true", "expected": True}],
        }
    )
    assert drill.expected == step.checks[0]["expected"] == "true"
    assert matches(True, drill.expected) and matches(True, "True") and not matches(True, "false")
    assert matches(None, "NULL") and matches(42, " 42 ") and not matches(42, "42.0")


def test_statement_timeout_default_and_spec_value() -> None:
    assert timeout_seconds(None) == 60
    assert timeout_seconds("5m") == 300
    assert (
        ValidationQuery.model_validate({"name": "a", "query": "select 1", "statement_timeout": "30s"}).model_dump(
            mode="json"
        )["statement_timeout"]
        == "30s"
    )
