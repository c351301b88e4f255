"""What a check may be, and how its value compares (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drflow.engines.postgres.checks import matches, refusal, timeout_seconds
from drflow.spec.plans import ValidateSqlAction
from drflow.spec.validation import SqlCheck as ValidationQuery


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


def test_validate_reports_a_check_that_would_write_at_its_line(tmp_path: Path) -> None:
    from tests.unit.test_spec_check import BASE, only_error

    text = BASE.replace("query: select count(*) from orders", "query: 'commit; create table x(); select 1'")
    error = only_error(text, tmp_path)
    assert error.line == text.splitlines().index("            query: 'commit; create table x(); select 1'") + 1
    assert "checks never write" in error.message and "starts with 'commit'" in error.message
    assert error.hint.startswith("rewrite it as a single select")


def test_validate_sql_steps_are_checked_too() -> None:
    from drflow.spec.diagnostics import SpecError
    from drflow.spec.load import load_spec, load_spec_text

    shipped = Path("plan_specs/api-marketplace.yaml")
    load_spec(shipped)  # the shipped checks are single selects
    text = shipped.read_text().replace("query: select not pg_is_in_recovery()", "query: 'set x = 1'", 1)
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, shipped)
    [error] = [e for e in caught.value.errors if "checks never write" in e.message]
    assert "starts with 'set'" in error.message
