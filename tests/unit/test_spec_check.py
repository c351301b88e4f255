"""Cross-spec checks: duplicate names, references, secrets, and the feasibility warnings."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from croniter import croniter

from drflow.spec.check import secret_key
from drflow.spec.diagnostics import Diagnostic, SpecError
from drflow.spec.load import LoadedSpec, load_spec_text
from drflow.spec.types import schedule_interval

BASE = """\
version: 1
metadata:
  name: shop
  owner: platform-team
regions:
  - name: us-east-1
    role: primary
  - name: us-west-2
storage:
  - name: s3-primary
    type: s3
    bucket: shop-backups
    conn_id: drflow_s3
    region: us-east-1
  - name: s3-secondary
    type: s3
    bucket: shop-backups-west
    conn_id: drflow_s3
    region: us-west-2
components:
  - name: orders
    criticality: medium
    rto: 1h
    rpo: 1d
    datastore:
      type: postgres
      database: orders
      primary:
        conn_id: drflow_pg_primary
        region: us-east-1
    backups:
      - name: daily-full
        type: full
        method: pg_basebackup
        schedule: "0 2 * * *"
        targets: [s3-primary]
        retention:
          days: 7
    drills:
      - name: weekly-restore
        type: restore
        schedule: "0 4 * * 0"
        policy: daily-full
        validation:
          - name: orders-count
            query: select count(*) from orders
"""


def load(text: str, tmp_path: Path) -> LoadedSpec:
    return load_spec_text(text, tmp_path / "spec.yaml")


def errors_of(text: str, tmp_path: Path) -> list[Diagnostic]:
    with pytest.raises(SpecError) as caught:
        load(text, tmp_path)
    return caught.value.errors


def only_error(text: str, tmp_path: Path) -> Diagnostic:
    errors = errors_of(text, tmp_path)
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def test_base_spec_is_clean(tmp_path: Path) -> None:
    assert load(BASE, tmp_path).warnings == []


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        ("conn_id: drflow_pg_primary", "conn_id: postgresql://app:hunter2@db:5432/orders", "connection URI"),
        ("query: select count(*) from orders", "query: 'host=db user=app password=hunter2'", "a password"),
        ("bucket: shop-backups\n", "bucket: shop-backups\n    prefix: AKIAIOSFODNN7EXAMPLE\n", "AWS access key"),
        ("owner: platform-team", "owner: '-----BEGIN RSA PRIVATE KEY-----'", "a private key"),
    ],
)
def test_secret_values_are_errors(tmp_path: Path, before: str, after: str, reason: str) -> None:
    assert before in BASE
    error = only_error(BASE.replace(before, after, 1), tmp_path)
    assert reason in error.message
    assert "Airflow connection" in error.hint and "conn_id" in error.hint


@pytest.mark.parametrize("key", ["password", "api_key", "token", "secret_access_key", "db-passwd"])
def test_secret_keys_get_a_specific_message(tmp_path: Path, key: str) -> None:
    text = BASE.replace(
        "        conn_id: drflow_pg_primary\n", f"        conn_id: drflow_pg_primary\n        {key}: x\n"
    )
    error = only_error(text, tmp_path)
    assert (error.line, error.col) == (30, 9)
    assert error.message.startswith(f"'{key}' is not a spec key, and ")
    assert "must never be written into a spec" in error.message
    assert "Airflow connection" in error.hint and "conn_id" in error.hint


def test_secret_key_names() -> None:
    assert secret_key("Password") == "a password"
    assert secret_key("aws_secret_access_key") == "an access key"
    assert secret_key("conn_id") == secret_key("description") == secret_key("retention") == ""


def test_a_url_without_password_is_not_a_secret(tmp_path: Path) -> None:
    text = BASE.replace("  owner: platform-team", "  owner: platform-team\n  description: see https://wiki/dr")
    assert load(text, tmp_path).warnings == []


# --- names and references -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "path", "noun"),
    [
        ("  - name: us-west-2\n", "  - name: us-east-1\n", "regions[us-east-1].name", "region name"),
        ("  - name: s3-secondary\n", "  - name: s3-primary\n", "storage[s3-primary].name", "storage target name"),
        (
            "    drills:\n",
            "      - name: daily-full\n        type: full\n        method: pg_basebackup\n"
            "        schedule: '@daily'\n        targets: [s3-primary]\n        retention: {days: 7}\n"
            "    drills:\n",
            "components[orders].backups[daily-full].name",
            "backup policy name",
        ),
        (
            "            query: select count(*) from orders\n",
            "            query: select count(*) from orders\n"
            "          - name: orders-count\n            query: select 1\n",
            "components[orders].drills[weekly-restore].validation[orders-count].name",
            "validation query name",
        ),
    ],
)
def test_duplicate_names(tmp_path: Path, before: str, after: str, path: str, noun: str) -> None:
    assert before in BASE
    (error,) = [e for e in errors_of(BASE.replace(before, after), tmp_path) if e.path == path]
    assert error.message.startswith(f"{noun} '") and "is used twice" in error.message
    assert "the first is on line" in error.hint


def test_duplicate_components_and_drills(tmp_path: Path) -> None:
    component = BASE[BASE.index("  - name: orders\n") :]
    drill = component[component.index("      - name: weekly-restore") :]
    errors = errors_of(BASE + component, tmp_path)
    assert [e.message for e in errors] == ["component name 'orders' is used twice"]
    errors = errors_of(BASE + drill, tmp_path)
    assert [e.message for e in errors] == ["drill name 'weekly-restore' is used twice in component 'orders'"]


def test_unknown_target_of_a_policy(tmp_path: Path) -> None:
    error = only_error(BASE.replace("targets: [s3-primary]", "targets: [s3-primray]"), tmp_path)
    assert (error.line, error.col, error.path) == (36, 19, "components[orders].backups[daily-full].targets[0]")
    assert (
        error.message == "backup policy 'daily-full' sends backups to storage target 's3-primray', which is not defined"
    )
    assert error.hint == "did you mean 's3-primary'? defined storage targets: 's3-primary', 's3-secondary'"


def test_unknown_policy_and_target_of_a_drill(tmp_path: Path) -> None:
    error = only_error(BASE.replace("policy: daily-full", "policy: dayly-full"), tmp_path)
    assert error.path == "components[orders].drills[weekly-restore].policy"
    assert "did you mean 'daily-full'?" in error.hint
    text = BASE.replace("        policy: daily-full\n", "        policy: daily-full\n        target: s3-secundary\n")
    error = only_error(text, tmp_path)
    assert error.path == "components[orders].drills[weekly-restore].target"
    assert "did you mean 's3-secondary'?" in error.hint
    text = BASE.replace("        policy: daily-full\n", "        policy: daily-full\n        target: s3-secondary\n")
    error = only_error(text, tmp_path)
    assert (
        error.message
        == "drill 'weekly-restore' restores from 's3-secondary', but policy 'daily-full' never writes there"
    )
    assert error.hint == "use one of the policy's targets: 's3-primary'"


def test_unknown_regions(tmp_path: Path) -> None:
    error = only_error(BASE.replace("    region: us-west-2\n", "    region: us-west-3\n"), tmp_path)
    assert error.path == "storage[s3-secondary].region"
    assert error.message == "storage target 's3-secondary' is in region 'us-west-3', which is not declared"
    assert error.hint == "did you mean 'us-west-2'? declared regions: 'us-east-1', 'us-west-2'"
    text = BASE.replace(
        "        region: us-east-1\n",
        "        region: us-east-1\n      replicas:\n        - name: replica-1\n"
        "          conn_id: drflow_pg_replica\n          region: eu-west-1\n",
    )
    error = only_error(text, tmp_path)
    assert error.path == "components[orders].datastore.replicas[replica-1].region"


def test_drill_without_backups_and_backups_without_datastore(tmp_path: Path) -> None:
    start, end = BASE.index("    backups:\n"), BASE.index("    drills:\n")
    error = only_error(BASE[:start] + BASE[end:], tmp_path)
    assert error.path == "components[orders].drills[weekly-restore]"
    assert error.message == "drill 'weekly-restore' has nothing to restore: component 'orders' has no backup policy"
    start, end = BASE.index("    datastore:\n"), BASE.index("    backups:\n")
    errors = errors_of(BASE[:start] + BASE[end:], tmp_path)
    assert [(e.path, e.message) for e in errors] == [
        ("components[orders].backups", "component 'orders' has backups but no datastore to take them from"),
        ("components[orders].drills", "component 'orders' has drills but no datastore to take them from"),
    ]


def test_reference_errors_are_reported_with_model_errors(tmp_path: Path) -> None:
    text = BASE.replace("rto: 1h", "rto: 1 hour").replace("targets: [s3-primary]", "targets: [nowhere]")
    assert len(errors_of(text, tmp_path)) == 2


# --- warnings -------------------------------------------------------------------------------------


def test_rpo_that_backups_cannot_meet_is_a_warning(tmp_path: Path) -> None:
    loaded = load(BASE.replace("rpo: 1d", "rpo: 1h"), tmp_path)
    (warning,) = loaded.warnings
    assert (warning.severity, warning.path, warning.line) == ("warning", "components[orders].rpo", 24)
    assert warning.message == (
        "RPO of 1h cannot be met: backups are up to 1d apart (policy 'daily-full') "
        "and no replica holds the changes in between"
    )
    assert warning.hint == "back up at least every 1h, add a replica, or relax the RPO"


def test_rpo_with_a_replica_warns_about_corruption(tmp_path: Path) -> None:
    text = BASE.replace("rpo: 1d", "rpo: 1h").replace(
        "        region: us-east-1\n",
        "        region: us-east-1\n      replicas:\n        - name: replica-1\n"
        "          conn_id: drflow_pg_replica\n          region: us-west-2\n",
    )
    (warning,) = load(text, tmp_path).warnings
    assert warning.message.startswith("RPO of 1h is met only by replication to 'replica-1'")
    assert "deleted or corrupted" in warning.message


def test_critical_component_without_drill_and_short_retention(tmp_path: Path) -> None:
    start = BASE.index("    drills:\n")
    text = (
        BASE[:start]
        .replace("criticality: medium", "criticality: critical")
        .replace('schedule: "0 2 * * *"', "schedule: '@weekly'")
        .replace("rpo: 1d", "rpo: 7d")
        .replace("days: 7", "days: 3")
    )
    warnings = load(text, tmp_path).warnings
    assert [(w.path, w.severity) for w in warnings] == [
        ("components[orders].name", "warning"),
        ("components[orders].backups[daily-full].retention.days", "warning"),
    ]
    assert warnings[0].message == "critical component 'orders' has no restore drill"
    assert warnings[1].message.startswith("backups of policy 'daily-full' are kept 3 days but taken only every 1w")
    assert warnings[1].hint == "keep them at least 7 days"


@pytest.mark.parametrize(
    "schedule",
    [
        "0 2 * * *",
        "*/5 * * * *",
        "0 4 * * 0",
        "0 0 1 * *",
        "0 0 29 2 *",
        "*/15 9-17 * * 1-5",
        "0 0 1,15 * 1",
        "0 0 31 * *",
    ],
)
def test_schedule_interval_is_the_widest_gap(schedule: str) -> None:
    runs = croniter(schedule, datetime(2024, 1, 1))
    previous, widest = runs.get_next(datetime), timedelta(0)
    while previous.year < 2032 and widest < timedelta(days=1000) or widest == timedelta(0):
        current = runs.get_next(datetime)
        widest, previous = max(widest, current - previous), current
        if schedule.startswith("*/") and previous > datetime(2024, 1, 20):
            break
    assert schedule_interval(schedule) == widest


def test_a_drill_on_a_policy_it_cannot_restore_is_an_error(tmp_path: Path) -> None:
    text = BASE.replace(
        "    drills:\n",
        '      - name: nightly-dump\n        type: full\n        method: pg_dump\n        schedule: "0 3 * * *"\n'
        "        targets: [s3-primary]\n        retention:\n          days: 7\n    drills:\n",
    ).replace("        policy: daily-full\n", "        policy: nightly-dump\n")
    error = only_error(text, tmp_path)
    assert error.path.endswith("drills[weekly-restore].policy")
    assert "method pg_dump" in error.message and "pg_basebackup backups only" in error.message
    assert "'daily-full'" in error.hint


def test_a_drill_needs_some_pg_basebackup_policy(tmp_path: Path) -> None:
    text = BASE.replace("        method: pg_basebackup\n", "        method: pg_dump\n").replace(
        "        policy: daily-full\n", ""
    )
    error = only_error(text, tmp_path)
    assert "has no pg_basebackup policy" in error.message
