"""Validation suites in the spec: today's `{name, query, expected}` entries, typed entries, their errors at the
line and column, a plan's `validate` step, the JSON Schema, and what backups record for them."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from drflow.plan.common import validation_queries
from drflow.spec.schema import json_schema
from drflow.spec.validation import (
    ChecksumCheck,
    HttpCheck,
    PgbenchCheck,
    RowCountCheck,
    SqlCheck,
    describe,
    format_latency,
    parse_checks,
    parse_latency,
    pgbench_key,
)
from tests.plan_inputs import recovery_dag, task_params
from tests.unit.test_spec_check import BASE, errors_of, load

SUITE = """\
          - {name: intact, type: checksum, tables: [orders, sales.items]}
          - {name: complete, type: row-count, tables: [orders], tolerance: 0.5%}
          - {name: consistent, type: constraints}
          - {name: indexes, type: amcheck, heapallindexed: true}
          - {name: no-orphans, type: orphans, query: select i.id from items i left join orders o using (id)}
          - {name: health, type: http, conn_id: shop_api, endpoint: /health, expect_status: 200,
             body_matches: 'ok|ready', max_latency: 300ms}
          - {name: deps, type: integration, points: [{name: payments, url: "https://pay.example.com/ping"}]}
          - {name: search, type: http-latency, url: "https://shop.example.com", endpoint: /search, requests: 30,
             percentiles: {p50: 100ms, p95: 0.5s}}
          - name: lookups
            type: pgbench
            duration: 3s
            script: |
              \\set id random(1, 1000)
              select * from orders where id = :id;
            min_ratio: 0.7
"""
PLAN = """\
recovery_plans:
  - name: clean
    scenario: security-incident
    status: approved
    components: [orders]
    approval: {approvers: [alice, bob]}
    steps:
      - {name: restore-clean, action: restore, component: orders{restore}}
      - name: check-clean
        action: validate
        component: orders
        node: {node}
        suite:
{suite}"""


def with_suite(suite: str) -> str:
    return BASE + suite


def plan_spec(suite: str, node: str = "restored", restore: str = "") -> str:
    return with_suite("") + PLAN.replace("{suite}", suite).replace("{node}", node).replace("{restore}", restore)


def test_todays_entries_still_work_and_typed_ones_parse(tmp_path: Path) -> None:
    spec = load(with_suite(SUITE), tmp_path).spec
    checks = spec.component("orders").drills[0].validation
    assert [c.type for c in checks] == [
        "sql", "checksum", "row-count", "constraints", "amcheck", "orphans", "http", "integration", "http-latency",
        "pgbench",
    ]  # fmt: skip
    old, checksum, count, *_, health, _, latency, bench = checks
    assert isinstance(old, SqlCheck) and old.query == "select count(*) from orders" and old.expected is None
    assert isinstance(checksum, ChecksumCheck) and checksum.tables == ["orders", "sales.items"]
    assert isinstance(count, RowCountCheck) and count.tolerance == "0.5%"
    assert isinstance(health, HttpCheck) and health.expect_status == [200] and health.max_latency == 0.3
    assert latency.model_dump(mode="json")["percentiles"] == {"p50": "100ms", "p95": "500ms"}
    assert isinstance(bench, PgbenchCheck) and bench.script and bench.script.startswith("\\set id")
    # What builders hand operators (model_dump) reads back as the same typed checks.
    assert parse_checks([c.model_dump(mode="json") for c in checks]) == checks
    assert parse_checks([{"name": "a", "query": "select 1"}])[0] == SqlCheck.model_validate(
        {"name": "a", "query": "select 1"}
    )
    assert describe(health) == "`health`: GET shop_api/health answers 200, matches /ok|ready/, within 300ms"
    assert describe(count) == "`complete`: row counts of orders within 0.5% of the counts at backup time"


@pytest.mark.parametrize(
    ("entry", "where", "message"),
    [
        (
            "{name: a, type: checksun, tables: [orders]}",
            "checksun",
            "there is no validation type 'checksun'; did you mean 'checksum'?",
        ),
        (
            "{name: a, type: http, endpoint: /x}",
            "{name",
            "give exactly one of conn_id (an Airflow http connection) or url",
        ),
        (
            "{name: a, type: http, url: 'https://x', max_latency: 300}",
            "300",
            "300 has no unit; write it with one, e.g. 300ms",
        ),
        ("{name: a, type: row-count, tables: [orders], tolerance: lots}", "lots", "'lots' is not a tolerance"),
        (
            "{name: a, type: pgbench}",
            "{name",
            "the built-in select-only run has no baseline from the source; give min_tps",
        ),
        (
            "{name: a, type: http-latency, url: 'https://x', percentiles: {q95: 1s}}",
            "{q95",
            "'q95' is not a percentile",
        ),
        (
            "{name: a, type: checksum, tables: ['orders; drop table x']}",
            "'orders",
            "'orders; drop table x' is not a valid table name",
        ),
        (
            "{name: a, type: pgbench, min_tps: 5, script: 'update orders set id = id;'}",
            "'update",
            "a pgbench check never writes: the check starts with 'update'",
        ),
        (
            "{name: a, type: orphans, query: 'delete from orders'}",
            "'delete",
            "checks never write: the check starts with 'delete'",
        ),
    ],
)
def test_a_bad_entry_is_an_error_at_its_line_and_column(tmp_path: Path, entry: str, where: str, message: str) -> None:
    line = f"          - {entry}\n"
    text = with_suite(line)
    [error] = errors_of(text, tmp_path)
    assert message in str(error), str(error)
    assert error.line == text.splitlines().index(line.rstrip("\n")) + 1
    assert error.col == line.index(where) + 1


def test_a_validate_step_runs_a_suite_on_the_restored_copy(tmp_path: Path) -> None:
    text = plan_spec(SUITE)
    loaded = load(text, tmp_path)
    [step] = [s for s in loaded.spec.recovery_plans[0].steps if s.name == "check-clean"]
    assert len(step.suite) == 9  # type: ignore[union-attr]
    params = task_params(text, ".plan.clean", "check-clean")
    assert params["step"]["restored_by"] == "restore-clean"
    runbook = recovery_dag(text, "clean").doc_md  # the plan's runbook names what each check proves
    assert "**Checks**: `intact`: orders, sales.items match their checksums at backup time;" in runbook
    # What the backup records for later: the drill's SQL value and the typed checks that compare with it.
    recorded = validation_queries(loaded.spec.component("orders"), loaded.spec)
    assert [(r.get("type", "sql"), r["name"]) for r in recorded] == [
        ("sql", "orders-count"),
        ("checksum", "intact"),
        ("row-count", "complete"),
        ("pgbench", "lookups"),
    ]


@pytest.mark.parametrize(
    ("suite", "node", "restore", "message"),
    [
        (
            "          - {name: c, type: row-count, tables: [orders]}\n",
            "primary",
            "",
            "compares with values recorded when the backup was taken",
        ),
        (
            "          - {name: c, type: checksum, tables: [orders]}\n",
            "restored",
            ", point_in_time: true",
            "replays WAL to a point in time",
        ),
        ("          - {name: c, type: pgbench, min_tps: 10}\n", "primary", "", "creates pgbench's tables"),
        (
            "          - {name: c, query: select 1}\n",
            "restored",
            "",
            "check 'c' of step 'check-clean' gives no expected value",
        ),
        (
            "          - {name: c, type: http, url: 'https://x'}\n          - {name: c, type: amcheck}\n",
            "restored",
            "",
            "check name 'c' is used twice in step 'check-clean'",
        ),
    ],
)
def test_plan_steps_compare_only_what_they_can(
    tmp_path: Path, suite: str, node: str, restore: str, message: str
) -> None:
    text = plan_spec(suite, node, restore)
    if "point_in_time" in restore:
        text = text.replace(
            "        retention:\n          days: 7\n",
            "        retention:\n          days: 7\n"
            "      - {name: wal, type: incremental, method: pg_receivewal, schedule: '@hourly',\n"
            "         targets: [s3-primary], retention: {days: 7}}\n",
            1,
        )
    [error] = errors_of(text, tmp_path)
    assert message in str(error), str(error)


def test_a_validate_step_with_database_checks_needs_a_node(tmp_path: Path) -> None:
    text = plan_spec("          - {name: c, type: amcheck}\n").replace("        node: restored\n", "")
    [error] = errors_of(text, tmp_path)
    assert "runs database checks but names no node; set node:" in str(error)
    http_only = plan_spec("          - {name: c, type: http, conn_id: shop_api}\n").replace(
        "        node: restored\n", ""
    )
    assert load(http_only, tmp_path).spec.recovery_plans[0].steps[1].node is None  # type: ignore[union-attr]


def test_the_json_schema_knows_the_types() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    data = yaml.safe_load(with_suite(SUITE))
    assert [e.message for e in validator.iter_errors(data)] == []
    data["components"][0]["drills"][0]["validation"].append({"name": "x", "type": "bogus"})
    assert list(validator.iter_errors(data))


def test_latency_and_pgbench_keys() -> None:
    assert parse_latency("250ms") == 0.25 and parse_latency("1.5s") == 1.5
    assert format_latency(0.25) == "250ms" and format_latency(2.0) == "2s"
    with pytest.raises(ValueError, match="not greater than zero"):
        parse_latency("0ms")
    one, two = parse_checks(
        [
            {"name": "a", "type": "pgbench", "script": "select 1;"},
            {"name": "b", "type": "pgbench", "script": "select 1;"},
        ]
    )
    assert isinstance(one, PgbenchCheck) and isinstance(two, PgbenchCheck)
    assert pgbench_key(one) == pgbench_key(two)  # the same run: one baseline
    assert pgbench_key(one) != pgbench_key(one.model_copy(update={"clients": 2}))
