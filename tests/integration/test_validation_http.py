"""Functional and performance checks over real HTTP and TCP: a local server on a free port answers them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from drflow.connections import read_without_airflow, reading_without_airflow
from drflow.engines.postgres.cluster import free_port
from drflow.jobs.validation import SuiteTarget, run_suite
from drflow.spec.validation import parse_checks
from tests.integration.http_receiver import HttpReceiver, http_conn, http_receiver  # noqa: F401


@pytest.fixture
def api(http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpReceiver]:  # noqa: F811
    """The receiver as the Airflow http connection `shop_api`, read the way the incident CLI reads it."""
    monkeypatch.setenv("AIRFLOW_CONN_SHOP_API", http_conn(http_receiver))
    monkeypatch.setenv("AIRFLOW_CONN_SHOP_DB", json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 1}))
    queue = {"conn_type": "amqp", "host": "127.0.0.1", "port": http_receiver.port}  # any listening TCP service
    monkeypatch.setenv("AIRFLOW_CONN_SHOP_QUEUE", json.dumps(queue))
    before = reading_without_airflow()
    read_without_airflow(True)
    try:
        yield http_receiver
    finally:
        read_without_airflow(before)


def test_http_checks_pass_and_fail_saying_what_came_back(api: HttpReceiver) -> None:
    api.statuses["/down"] = 503
    api.delays["/slow"] = 0.25
    checks = parse_checks(
        [
            {
                "name": "health",
                "type": "http",
                "conn_id": "shop_api",
                "endpoint": "/health",
                "body_contains": '"status": 200',
                "body_matches": r'"path":\s*"/health"',
                "max_latency": "2s",
            },
            {"name": "down", "type": "http", "url": f"{api.base_url}/down"},
            {"name": "slow", "type": "http", "conn_id": "shop_api", "endpoint": "/slow", "max_latency": "50ms"},
            {"name": "wrong-body", "type": "http", "conn_id": "shop_api", "endpoint": "/x", "body_contains": "ready"},
            {"name": "nobody", "type": "http", "url": f"http://127.0.0.1:{free_port()}/", "timeout": "1s"},
        ]
    )
    result = run_suite(checks, SuiteTarget(conn=None))
    problems = {r.name: r.problem() for r in result.results if not r.passed}
    assert set(problems) == {"down", "slow", "wrong-body", "nobody"}
    assert problems["down"] == "down (http): status: expected 200, got 503 (another status)"
    assert problems["slow"].startswith("slow (http): latency: expected at most 50ms, got 2")
    assert "ms over the limit)" in problems["slow"]
    assert problems["wrong-body"] == (
        'wrong-body (http): body: expected to contain \'ready\', got \'{"path": "/x", "status": 200}\' (not found)'
    )
    assert problems["nobody"].startswith("nobody (http): status: expected 200, got no answer (ConnectionError")
    assert [r.path for r in api.requests][:2] == ["/health", "/down"]


def test_latency_percentiles_over_n_requests(api: HttpReceiver) -> None:
    api.delays["/search"] = 0.02
    [check] = parse_checks(
        [
            {
                "name": "search",
                "type": "http-latency",
                "conn_id": "shop_api",
                "endpoint": "/search",
                "requests": 10,
                "percentiles": {"p99": "5s", "p50": "5ms"},
            }
        ]
    )
    [result] = run_suite([check], SuiteTarget(conn=None)).results
    assert len(api.on("/search")) == 10 and result.detail["requests"] == 10
    assert [m.subject for m in result.measures] == ["status", "p50", "p99"]
    status, p50, p99 = result.measures
    assert status.passed and status.got == "10 of 10 answered 200" and p99.passed
    assert not p50.passed and p50.expected == "at most 5ms" and p50.by is not None and "over the limit" in p50.by
    assert result.problem().startswith("search (http-latency): p50: expected at most 5ms, got 2")


def test_integration_points_answer_or_accept_connections(api: HttpReceiver) -> None:
    closed = free_port()
    [check] = parse_checks(
        [
            {
                "name": "dependencies",
                "type": "integration",
                "timeout": "1s",
                "points": [
                    {"name": "api", "conn_id": "shop_api", "endpoint": "/ping"},
                    {"name": "status-page", "url": f"{api.base_url}/status", "expect_status": [204]},
                    {"name": "ledger-db", "conn_id": "shop_db"},
                    {"name": "queue", "conn_id": "shop_queue"},
                    {"name": "mailer", "url": f"http://127.0.0.1:{closed}/"},
                ],
            }
        ]
    )
    [result] = run_suite([check], SuiteTarget(conn=None)).results
    verdicts = {m.subject: m for m in result.measures}
    assert verdicts["api"].passed and verdicts["api"].got == "200"
    assert not verdicts["status-page"].passed and verdicts["status-page"].line() == (
        "status-page: expected 204, got 200 (another status)"
    )
    assert not verdicts["ledger-db"].passed and verdicts["ledger-db"].expected == "a TCP connection to 127.0.0.1:1"
    assert verdicts["queue"].passed and verdicts["queue"].got.startswith("connected in ")
    assert not verdicts["mailer"].passed and verdicts["mailer"].by == "down"
