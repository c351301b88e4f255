"""Secrets anywhere in a spec, free-form maps included, are errors; printed source lines mask them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from drflow.cli import app
from drflow.spec.check import mask_secrets
from drflow.spec.diagnostics import SpecError
from drflow.spec.load import load_spec_text
from tests.unit.test_plan_recovery import SPEC

HTTP = "      - {name: call, action: http_call, conn_id: lb, json: {pool: east}}\n"
TELL = "      - name: tell\n"
CHECK = 'checks: [{name: writable, query: select not pg_is_in_recovery(), expected: "true"}]'
SLACK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefghijklmnopqrstuvwx"


def _errors(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, tmp_path / "shop.yaml")
    return [str(d) for d in caught.value.errors]


def test_the_base_spec_has_no_secret(tmp_path: Path) -> None:
    load_spec_text(SPEC.replace(TELL, HTTP + TELL), tmp_path / "shop.yaml")


@pytest.mark.parametrize(
    ("json", "reason"),
    [
        ("{pool: east, password: hunter2}", "'password' holds a password"),
        ("{pool: east, headers: {X-Api-Key: abc123}}", "'X-Api-Key' holds an access key"),
        ("{pool: east, headers: {Authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.abc'}}", "'Authorization' holds"),
        ("{pool: east, env: 'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG'}", "AWS_SECRET_ACCESS_KEY"),
        ("{pool: east, url: '/lb?token=abc123def'}", "a token (token=…)"),
        ("{pool: east, note: 'Bearer eyJhbGciOiJIUzI1NiJ9.abc'}", "a bearer token"),
        (f"{{pool: east, hook: '{SLACK}'}}", "a Slack webhook URL"),
    ],
)
def test_secrets_in_http_call_json_are_errors(tmp_path: Path, json: str, reason: str) -> None:
    text = SPEC.replace(TELL, HTTP.replace("{pool: east}", json) + TELL)
    (error,) = _errors(text, tmp_path)
    assert reason in error and "shop.yaml:50:" in error
    assert "Airflow connection" in error


def test_secrets_in_sql_check_definitions_and_endpoints_are_errors(tmp_path: Path) -> None:
    checks = CHECK.replace("}]", ", password: hunter2}]")
    (error,) = _errors(SPEC.replace(CHECK, checks), tmp_path)
    assert "'password' holds a password" in error
    endpoint = HTTP.replace("json: {pool: east}", f"endpoint: '{SLACK}'")
    (error,) = _errors(SPEC.replace(TELL, endpoint + TELL), tmp_path)
    assert "Slack webhook URL" in error
    template = HTTP.replace("{pool: east}", "{pool: east, token: '{{ conn.lb.password }}'}")
    load_spec_text(SPEC.replace(TELL, template + TELL), tmp_path / "shop.yaml")


def test_mask_secrets() -> None:
    assert mask_secrets("    password: hunter2") == "    password: ****"
    assert mask_secrets("  json: {token: abc, user: x}") == "  json: {token: ****, user: x}"
    assert mask_secrets("conn_id: postgresql://app:hunter2@db/orders") == "conn_id: postgresql://app:****@db/orders"
    assert "abcdefghij" not in mask_secrets(f"hook: {SLACK}")
    assert mask_secrets("env: AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI") == "env: AWS_SECRET_ACCESS_KEY=****"
    assert mask_secrets("select count(*) from accounts") == "select count(*) from accounts"


def test_validate_never_prints_the_secret(tmp_path: Path) -> None:
    secret = "Bearer eyJhbGciOiJIUzI1NiJ9.s3cr3tpayload"
    path = tmp_path / "shop.yaml"
    path.write_text(SPEC.replace(TELL, HTTP.replace("{pool: east}", f"{{pool: east, note: '{secret}'}}") + TELL))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "a bearer token" in result.output and "50 |" in result.output
    assert "s3cr3tpayload" not in result.output and "****" in result.output
