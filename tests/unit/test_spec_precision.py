"""Loader precision: errors at the line that needs the fix, limits that fit honest specs, plain paths, times."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from drflow.spec.diagnostics import Diagnostic, SpecError
from drflow.spec.load import load_spec_text
from drflow.spec.plans import HttpCallAction
from drflow.spec.schema import json_schema
from tests.unit.test_plan_recovery import SPEC as PLANS
from tests.unit.test_spec_check import BASE

PRIMARY = "      primary:\n        conn_id: drflow_pg_primary\n        region: us-east-1\n"
TELL = "      - name: tell\n"


def _errors(text: str, tmp_path: Path) -> list[Diagnostic]:
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, tmp_path / "spec.yaml")
    return caught.value.errors


def _only(text: str, tmp_path: Path) -> Diagnostic:
    errors = _errors(text, tmp_path)
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def _line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


# --- unclosed quotes and brackets ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "quote"),
    [
        ("  owner: platform-team", '  owner: "platform-team', '"'),  # YAML reads on to the quote of "0 2 * * *"
        ("  owner: platform-team", "  owner: 'platform''s team", "'"),  # '' is a quote inside the text
        ("  owner: platform-team", "  owner: 'platform''s team\n  description: 'x'", "'"),
    ],
)
def test_a_quote_left_open_mid_file_is_reported_at_its_line_not_where_yaml_gave_up(
    tmp_path: Path, before: str, after: str, quote: str
) -> None:
    text = BASE.replace(before, after, 1)
    error = _only(text, tmp_path)
    assert (error.line, error.col) == (4, 10), str(error)
    assert f"the quote {quote} opened here is" in error.message and "gave up on line" in error.message
    assert error.hint.startswith("close it")


@pytest.mark.parametrize(
    ("before", "after", "what"),
    [
        ("query: select count(*) from orders", 'query: "select count(*) from orders', 'quote "'),
        ("query: select count(*) from orders", "query: 'select count(*) from orders", "quote '"),
        ("targets: [s3-primary]", "targets: [s3-primary", "'['"),
        ("    backups:\n", "    backups:\n      - {name: x, type: full\n", "'{'"),
    ],
)
def test_an_unclosed_quote_or_bracket_is_reported_where_it_was_opened(
    tmp_path: Path, before: str, after: str, what: str
) -> None:
    text = BASE.replace(before, after, 1)
    error = _only(text, tmp_path)
    assert error.line == _line_of(text, after.splitlines()[-1]), str(error)
    assert f"the {what} opened here is never closed" in error.message
    assert error.hint.startswith("close it")


# --- objectives greater than zero ----------------------------------------------------------------


@pytest.mark.parametrize("field", ["rto", "rpo"])
def test_rto_and_rpo_must_be_greater_than_zero(tmp_path: Path, field: str) -> None:
    written = {"rto": "rto: 1h", "rpo": "rpo: 1d"}[field]
    text = BASE.replace(written, f"{field}: 0s")
    error = _only(text, tmp_path)
    assert (error.line, error.path) == (_line_of(text, f"{field}: 0s"), f"components[orders].{field}")
    assert "'0s' is not greater than zero" in error.message and "e.g. 30s, 5m or 1h" in error.hint
    plan = PLANS.replace(
        "    approval: {approvers: [bob, carol]}", f"    {field}: 0m\n    approval: {{approvers: [bob, carol]}}"
    )
    assert "not greater than zero" in _only(plan, tmp_path).message


# --- the alias limit -----------------------------------------------------------------------------


def _big_spec(components: int) -> str:
    head = BASE.split("components:\n")[0] + "components:\n"
    component = BASE.split("components:\n")[1].replace(
        PRIMARY, PRIMARY + "      replicas: [{name: replica-1, conn_id: drflow_pg_replica, region: us-west-2}]\n"
    )
    component += "          - {name: orders-sum, query: select sum(total) from orders, expected: 1}\n"
    return head + "".join(component.replace("name: orders\n", f"name: orders-{i}\n") for i in range(components))


def test_an_honest_spec_of_2500_components_loads(tmp_path: Path) -> None:
    text = _big_spec(2500)
    started = time.perf_counter()
    loaded = load_spec_text(text, tmp_path / "big.yaml")
    elapsed = time.perf_counter() - started
    assert len(loaded.spec.components) == 2500
    print(f"2500 components, {len(text) // 1024} KiB: loaded in {elapsed:.2f}s")


def test_an_alias_bomb_names_the_limit_and_where_it_was_passed(tmp_path: Path) -> None:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    rows += [f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]" for a, b in zip("abcde", "bcdef", strict=True)]
    error = _only("\n".join(rows) + "\n", tmp_path)
    assert "more than 100000 repeated values through aliases" in error.message and "alias bombs" in error.message
    assert error.line == 1 and "fewer nested aliases" in error.hint  # the value repeated: the x of &a


# --- method and type -----------------------------------------------------------------------------


def test_a_method_that_cannot_take_the_type_is_reported_at_the_method_line(tmp_path: Path) -> None:
    text = BASE.replace("        type: full\n", "        type: differential\n")
    error = _only(text, tmp_path)
    assert error.line == _line_of(text, "method: pg_basebackup") and error.path.endswith(".method")
    assert "cannot take differential backups" in error.message
    assert "use method pgbackrest, or set type: full" in error.hint


# --- every error says what would be right ---------------------------------------------------------

MISTAKES = [
    ("retention:\n          days: 7", "retention:\n          days: 0"),
    ("criticality: medium", "criticality: urgent"),
    ("policy: daily-full", "policy: nightly"),
    ('schedule: "0 2 * * *"', "schedule: 7"),
    ("rto: 1h", "rto: [1h]"),
    ("    datastore:\n", "    datastore:\n      version: 99\n"),
    ("bucket: shop-backups\n", "bucket: Shop_Backups\n"),
    ("  owner: platform-team", "  owner: platform-team\n  password: x"),
    ("    region: us-west-2\n", "    region: nowhere\n"),
    ("targets: [s3-primary]", "targets: []"),
    ("type: restore", "type: chaos"),
]


@pytest.mark.parametrize(("before", "after"), MISTAKES)
def test_every_error_ends_with_what_would_be_right(tmp_path: Path, before: str, after: str) -> None:
    assert before in BASE
    for error in _errors(BASE.replace(before, after, 1), tmp_path):
        assert error.hint.strip(), f"no hint: {error}"
    plan = PLANS.replace("node: replica-1}", "node: replica-9}", 1).replace("depends_on: [promote]", "depends_on: [x]")
    for error in _errors(plan.replace("component: orders}", "component: nope}", 1), tmp_path):
        assert error.hint.strip(), f"no hint: {error}"


# --- pgBackRest paths ----------------------------------------------------------------------------


def _with_pgbackrest(path: str) -> str:
    return BASE.replace(PRIMARY, PRIMARY + f"      pgbackrest:\n        config: {path}\n")


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("'/etc/pgbackrest.conf; rm -rf /'", "contains ';'"),
        ("'/etc/$(id)/pgbackrest.conf'", "contains '$', '(', ')'"),
        ("/etc/pgbackrest/../../root/x.conf", "'..' segment"),
        ("etc/pgbackrest.conf", "not an absolute path"),
        ('"/etc/pgbackrest.conf\\narchive-push=evil"', "contains '\\n'"),
        ("'/etc/`x`.conf'", "contains '`'"),
    ],
)
def test_a_pgbackrest_config_path_must_be_a_plain_absolute_path(tmp_path: Path, path: str, problem: str) -> None:
    text = _with_pgbackrest(path)
    error = _only(text, tmp_path)
    assert error.path == "components[orders].datastore.pgbackrest.config" and problem in error.message
    assert error.line == _line_of(text, "config:") and "/etc/pgbackrest/pgbackrest.conf" in error.hint


def test_a_pgbackrest_config_path_with_spaces_is_fine(tmp_path: Path) -> None:
    spec = load_spec_text(_with_pgbackrest("/srv/pg backrest/pgbackrest.conf"), tmp_path / "spec.yaml").spec
    datastore = spec.component("orders").postgres
    assert datastore is not None and datastore.pgbackrest.config == "/srv/pg backrest/pgbackrest.conf"


def test_the_json_schema_keeps_in_step(tmp_path: Path) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())

    def errors(text: str) -> list[Any]:
        return [tuple(e.absolute_path) for e in validator.iter_errors(yaml.safe_load(text))]

    assert errors(_with_pgbackrest("'/srv/pg backrest/pgbackrest.conf'")) == []
    config = json_schema()["$defs"]["PgBackRestSettings"]["properties"]["config"]
    assert "pattern" in config and "shell" in config["description"]
    assert errors(_with_pgbackrest("'/etc/x.conf; rm -rf /'")) and errors(_with_pgbackrest("/etc/../x.conf"))
    assert ("components", 0, "rto") in errors(BASE.replace("rto: 1h", "rto: 0s"))


# --- times ---------------------------------------------------------------------------------------

HTTP = "      - {name: call, action: http_call, conn_id: lb, json: {until: WHEN}}\n"


@pytest.mark.parametrize(
    "written", ["2026-12-01 10:00:00", "2026-12-01T10:00:00", "'2026-12-01T10:00'", "2026-12-01 10:00"]
)
def test_a_naive_time_in_the_spec_is_refused_with_the_expected_format(tmp_path: Path, written: str) -> None:
    text = PLANS.replace(TELL, HTTP.replace("WHEN", written) + TELL)
    error = _only(text, tmp_path)
    assert "is a time without a timezone" in error.message and error.line == _line_of(text, "until:")
    assert "e.g. 2026-12-01T10:00" in error.hint and "+00:00" in error.hint


def test_a_time_with_a_timezone_is_kept_as_written(tmp_path: Path) -> None:
    text = PLANS.replace(TELL, HTTP.replace("WHEN", "2026-12-01T10:00:00+02:00") + TELL)
    spec = load_spec_text(text, tmp_path / "spec.yaml").spec
    step = next(s for s in spec.recovery_plans[0].steps if s.name == "call")
    assert isinstance(step, HttpCallAction)
    assert step.json_body == {"until": "2026-12-01T10:00:00+02:00"}  # text, as JSON can carry it


# --- values of any shape never crash the checks (a crash would fail the whole DAG file) ------------

MARKETPLACE = Path(__file__).resolve().parents[2] / "plan_specs" / "api-marketplace.yaml"


@pytest.mark.parametrize(
    ("line", "written"),
    [
        ("        method: pg_basebackup", "        method: []"),
        ("      - name: daily-full", "      - name: {a: b}"),
        ("      - name: gate-lag", "      - name: []"),
        ("        action: gate_lag", "        action: {}"),
        ("      approvers: [oncall, admin]", "      approvers: [[a]]"),
    ],
)
def test_values_of_the_wrong_shape_are_errors_not_crashes(tmp_path: Path, line: str, written: str) -> None:
    text = MARKETPLACE.read_text()
    assert line in text
    errors = _errors(text.replace(line, written, 1), tmp_path)
    assert errors and all(error.hint for error in errors)
    assert not any("could not check" in error.message for error in errors)


def test_a_data_directory_is_a_plain_absolute_path_too(tmp_path: Path) -> None:
    # It is written into pgbackrest.conf (pg1-path): a newline there would add configuration lines.
    injected = 'data_directory: "/var/lib/pg\\narchive-push-queue-max=1"'
    text = BASE.replace(
        "        region: us-east-1\n    backups", f"        region: us-east-1\n        {injected}\n    backups"
    )
    error = _only(text, tmp_path)
    assert error.path == "components[orders].datastore.primary.data_directory" and "contains '\\n'" in error.message
