"""pgBackRest and pg_dump methods without a server: validation, configuration rendering, plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drflow.contracts import BackupRun
from drflow.engines.postgres.pgbackrest_config import (
    PgBackRestError,
    S3Access,
    archive_get_command,
    render_config,
    secret_env,
    server_settings,
    stanza_settings,
)
from drflow.plan.build import build_plans
from drflow.spec.diagnostics import SpecError
from drflow.spec.load import load_spec_text
from drflow.spec.model import Spec

SPEC = """\
version: 1
metadata: {name: shop, owner: team}
regions: [{name: us-east-1, role: primary}, {name: us-west-2}]
storage:
  - {name: local-east, type: local, path: /backups/east, region: us-east-1}
  - {name: s3-west, type: s3, bucket: shop-west, conn_id: drflow_s3, region: us-west-2, prefix: shop/dr}
components:
  - name: orders
    criticality: low
    rto: 1h
    rpo: 1d
    datastore:
      type: postgres
      database: orders
      primary: {conn_id: pg_orders, region: us-east-1, data_directory: /var/lib/postgresql/15/main}
    backups:
      - {name: weekly-full, type: full, method: pgbackrest, schedule: "@weekly",
         targets: [local-east, s3-west], retention: {days: 35}}
      - {name: daily-diff, type: differential, method: pgbackrest, schedule: "@daily",
         targets: [s3-west], retention: {days: 7}}
      - {name: hourly-incr, type: incremental, method: pgbackrest, schedule: "@hourly",
         targets: [local-east], retention: {days: 7}}
      - {name: nightly-dump, type: full, method: pg_dump, schedule: "@daily",
         targets: [local-east], retention: {days: 14}}
"""


def _spec(text: str = SPEC, tmp_path: Path = Path("/specs")) -> Spec:
    return load_spec_text(text, tmp_path / "shop.yaml").spec


def test_method_that_cannot_take_the_type_reads_well_in_validate(tmp_path: Path) -> None:
    from drflow.cli import app

    path = tmp_path / "shop.yaml"
    path.write_text(SPEC.replace("type: incremental, method: pgbackrest", "type: incremental, method: pg_basebackup"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if ": error: " in line]
    assert line == (
        f"{path}:21:56: error: components[orders].backups[hourly-incr].method: method 'pg_basebackup' cannot take "
        "incremental backups (it takes: full); for incremental backups use method pg_receivewal or pgbackrest, "
        "or set type: full"
    )


def test_differential_with_pg_basebackup_is_rejected(tmp_path: Path) -> None:
    text = SPEC.replace("type: differential, method: pgbackrest", "type: differential, method: pg_basebackup")
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, tmp_path / "shop.yaml")
    [error] = caught.value.errors
    assert error.line == 19
    assert "method 'pg_basebackup' cannot take differential backups" in error.message
    assert error.path.endswith(".method")  # at the method: value, not the start of the policy
    assert error.hint == "for differential backups use method pgbackrest, or set type: full"


def test_pgbackrest_needs_the_data_directory(tmp_path: Path) -> None:
    text = SPEC.replace(", data_directory: /var/lib/postgresql/15/main", "")
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, tmp_path / "shop.yaml")
    lines = [(e.line, e.path) for e in caught.value.errors]
    assert lines == [(17, "components[orders].backups[weekly-full].method")] + [
        (line, f"components[orders].backups[{name}].method") for line, name in ((19, "daily-diff"), (21, "hourly-incr"))
    ]
    first = caught.value.errors[0]
    assert "uses pgBackRest" in first.message and "no data_directory" in first.message
    assert "set datastore.primary.data_directory" in first.hint


def test_config_has_one_repository_per_target_and_no_secret() -> None:
    settings = stanza_settings(_spec(), _spec().component("orders"))
    assert settings.stanza == "shop-orders"
    assert [(r.index, r.name, r.retention_days) for r in settings.repos] == [(1, "local-east", 35), (2, "s3-west", 35)]
    access = S3Access.from_endpoint_url(
        "https://127.0.0.1:9443", False, key="AKIAEXAMPLEKEY000000", secret="s3cr3t-value", token="tok-123"
    )
    text = render_config(settings, pg_port=5433, pg_user="backup", s3={"s3-west": access}, source="shop.yaml")
    options = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert options == {
        "start-fast": "y",
        "pg1-path": "/var/lib/postgresql/15/main",
        "pg1-port": "5433",
        "pg1-socket-path": "/var/run/postgresql",
        "pg1-user": "backup",
        "repo1-type": "posix",
        "repo1-path": "/backups/east/pgbackrest",
        "repo1-retention-full-type": "time",
        "repo1-retention-full": "35",
        "repo2-type": "s3",
        "repo2-path": "/shop/dr/pgbackrest",
        "repo2-s3-bucket": "shop-west",
        "repo2-s3-region": "us-west-2",
        "repo2-s3-endpoint": "127.0.0.1",
        "repo2-s3-uri-style": "path",
        "repo2-storage-port": "9443",
        "repo2-storage-verify-tls": "n",
        "repo2-retention-full-type": "time",
        "repo2-retention-full": "35",
    }
    assert "[shop-orders]" in text and "[global]" in text
    for secret in ("AKIAEXAMPLEKEY000000", "s3cr3t-value", "tok-123"):
        assert secret not in text
    assert secret_env(settings, {"s3-west": access}) == {
        "PGBACKREST_REPO2_S3_KEY": "AKIAEXAMPLEKEY000000",
        "PGBACKREST_REPO2_S3_KEY_SECRET": "s3cr3t-value",
        "PGBACKREST_REPO2_S3_TOKEN": "tok-123",
    }
    assert server_settings(settings) == {
        "archive_mode": "on",
        "archive_command": "pgbackrest --config=/etc/pgbackrest/pgbackrest.conf "
        "--config-include-path=/etc/pgbackrest/conf.d --stanza=shop-orders archive-push %p",
    }
    assert f"#   archive_command = '{server_settings(settings)['archive_command']}'" in text


def test_archive_and_restore_commands_quote_every_spec_value_for_the_shell() -> None:
    import dataclasses
    import shlex

    text = SPEC.replace(
        "data_directory: /var/lib/postgresql/15/main}",
        "data_directory: /var/lib/postgresql/15/main}\n      pgbackrest: {config: /etc/pg br/pgbackrest.conf}",
    )
    settings = stanza_settings(_spec(text), _spec(text).component("orders"))
    assert shlex.split(server_settings(settings)["archive_command"]) == [
        "pgbackrest",
        "--config=/etc/pg br/pgbackrest.conf",
        "--config-include-path=/etc/pg br/conf.d",
        "--stanza=shop-orders",
        "archive-push",
        "%p",
    ]
    # Whatever reaches the renderer (validation refuses such paths too) stays one argument.
    hostile = dataclasses.replace(settings, config_path="/etc/x'; touch /tmp/pwned; echo '.conf")
    command = server_settings(hostile)["archive_command"]
    assert shlex.split(command)[1] == "--config=/etc/x'; touch /tmp/pwned; echo '.conf"
    restore = archive_get_command(hostile, 2, Path("/srv/re stored/100%"))
    assert shlex.split(restore)[-4:] == ["--pg1-path=/srv/re stored/100%%", "archive-get", "%f", "%p"]
    # The comment in the rendered file is a valid postgresql.conf line (quotes doubled).
    rendered = render_config(hostile, pg_port=5432, pg_user="postgres")
    assert "#   archive_command = '" + command.replace("'", "''") + "'" in rendered


def test_aws_repositories_use_the_regional_endpoint() -> None:
    settings = stanza_settings(_spec(), _spec().component("orders"))
    text = render_config(settings, pg_port=5432, pg_user="postgres")
    assert "repo2-s3-endpoint=s3.us-west-2.amazonaws.com\n" in text
    assert "uri-style" not in text and "verify-tls" not in text


def test_s3_endpoints_must_speak_tls() -> None:
    with pytest.raises(PgBackRestError, match="only HTTPS.*TLS-terminating proxy"):
        S3Access.from_endpoint_url("http://127.0.0.1:5000")
    assert S3Access.from_endpoint_url("https://minio.internal", "/etc/ca.pem").ca_file == "/etc/ca.pem"


@pytest.mark.slow  # the amazon provider's import takes seconds
def test_s3_access_from_an_airflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_TEST_PGBR_S3",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIAEXAMPLEKEY000000",
                "password": "s3cr3t-value",
                "extra": {"endpoint_url": "https://127.0.0.1:9443", "verify": False, "region_name": "us-east-1"},
            }
        ),
    )
    access = S3Access.from_airflow_conn("test_pgbr_s3", "us-east-1")
    assert (access.endpoint, access.port, access.verify_tls) == ("127.0.0.1", 9443, False)
    assert (access.key, access.secret) == ("AKIAEXAMPLEKEY000000", "s3cr3t-value")
    assert "s3cr3t" not in repr(access)


def test_plans_of_both_methods() -> None:
    plans = {p.dag_id: p for p in build_plans(_spec(), "shop.yaml")}
    diff = plans["dr.shop.orders.backup.daily-diff"]
    assert [(t.task_id, t.action, t.upstream) for t in diff.tasks] == [
        ("check_source", "pgbackrest.check", ()),
        ("pgbackrest_backup", "pgbackrest.backup", ("check_source",)),
        ("pgbackrest_verify", "pgbackrest.verify", ("pgbackrest_backup",)),
    ]
    backup = diff.task("pgbackrest_backup")
    assert backup.params["backup_type"] == "differential"
    assert [t["name"] for t in BackupRun.from_params(backup.params["run"]).targets] == ["s3-west"]
    assert backup.params["pgbackrest"]["stanza"] == "shop-orders"
    assert [r["index"] for r in backup.params["pgbackrest"]["repos"]] == [1, 2]
    assert "repo2" in backup.doc
    dump = plans["dr.shop.orders.backup.nightly-dump"]
    assert [(t.task_id, t.action) for t in dump.tasks] == [
        ("check_source", "postgres.check_dump_source"),
        ("take_backup", "postgres.logical_dump"),
        ("verify_backup", "store.verify_backup"),
    ]
    assert BackupRun.from_params(dump.task("take_backup").params["run"]).database == "orders"
    from drflow.render.actions import ACTIONS

    assert all(t.action in ACTIONS for p in plans.values() for t in p.tasks)


def test_pgbackrest_config_command(tmp_path: Path) -> None:
    from drflow.cli import app

    spec = tmp_path / "shop.yaml"
    spec.write_text(SPEC)
    output = tmp_path / "etc" / "pgbackrest.conf"
    args = ["pgbackrest-config", "--spec", str(spec), "--component", "orders", "--pg-port", "5433"]
    result = CliRunner().invoke(app, [*args, "--pg-user", "postgres", "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "pg1-port=5433\n" in output.read_text() and oct(output.stat().st_mode)[-3:] == "640"
    missing = CliRunner().invoke(app, [*args])
    assert missing.exit_code == 1 and "Airflow connection 'pg_orders' is not defined" in missing.output
    assert "give --pg-port and --pg-user" in missing.output
