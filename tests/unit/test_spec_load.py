"""Loading specs: YAML with positions, pydantic errors as file:line:col diagnostics, discovery."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drflow.spec.check_currency import reviews
from drflow.spec.diagnostics import Diagnostic, SpecError
from drflow.spec.load import discover, load_spec, load_spec_text, load_specs
from drflow.spec.model import BackupPolicy, LocalTarget, S3Target
from drflow.spec.validate import validate_paths

ROOT = Path(__file__).resolve().parents[2]
MARKETPLACE = ROOT / "plan_specs" / "api-marketplace.yaml"
MINIMAL = ROOT / "plan_specs" / "examples" / "minimal.yaml"
DATA = Path(__file__).parent / "data"

# The table of the seed (disaster-recovery-framework.md): RTO, RPO, criticality.
SEED = {
    "api-gateway": ("15m", "5m", "critical", "gateway"),
    "api-portal": ("30m", "1h", "high", "portal"),
    "api-catalog": ("1h", "1h", "high", "catalog"),
    "user-database": ("30m", "5m", "critical", "users"),
    "analytics": ("2h", "1h", "medium", "analytics"),
    "billing": ("1h", "15m", "high", "billing"),
}

VALID = """\
version: 1
metadata:
  name: shop
  owner: platform-team
regions:
  - name: us-east-1
    role: primary
storage:
  - name: local-store
    type: local
    path: backups
components:
  - name: orders
    criticality: low
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
        schedule: "@daily"
        targets: [local-store]
        retention:
          days: 7
"""


def errors_of(text: str, tmp_path: Path) -> list[Diagnostic]:
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, tmp_path / "spec.yaml")
    return caught.value.errors


def only_error(text: str, tmp_path: Path) -> Diagnostic:
    errors = errors_of(text, tmp_path)
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def parse_duration_text(text: str) -> timedelta:
    units = {"m": 60, "h": 3600, "d": 86400}
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def test_api_marketplace_spec_has_the_seed_numbers() -> None:
    loaded = load_spec(MARKETPLACE)
    spec = loaded.spec
    assert MARKETPLACE.read_text().startswith("# yaml-language-server: $schema=../drflow.schema.json\n")
    assert (spec.metadata.name, spec.metadata.owner) == ("api-marketplace", "platform-team")
    assert [(r.name, r.role) for r in spec.regions] == [("us-east-1", "primary"), ("us-west-2", "secondary")]
    primary, secondary = spec.storage
    assert isinstance(primary, S3Target) and isinstance(secondary, S3Target)
    assert (primary.name, primary.type, primary.bucket, primary.conn_id, primary.region, primary.prefix) == (
        "s3-primary",
        "s3",
        "drflow-backups-us-east-1",
        "drflow_s3",
        "us-east-1",
        "api-marketplace",
    )
    assert (secondary.name, secondary.bucket, secondary.region) == (
        "s3-secondary",
        "drflow-backups-us-west-2",
        "us-west-2",
    )
    # The seed's six services are databases; the portal's assets tree is file storage of its own.
    assert [c.name for c in spec.components if c.postgres] == list(SEED)
    assets = spec.component("portal-assets")
    assert assets.datastore is not None and assets.datastore.type == "files"
    assert (assets.rto, assets.rpo, assets.criticality) == (timedelta(minutes=30), timedelta(hours=1), "high")
    assert [(p.name, p.method) for p in assets.backup_policies] == [
        ("daily-full", "files"),
        ("hourly-incremental", "files"),
    ]
    for component in (c for c in spec.components if c.postgres):
        rto, rpo, criticality, database = SEED[component.name]
        assert component.rto == parse_duration_text(rto)
        assert component.rpo == parse_duration_text(rpo)
        assert component.criticality == criticality
        datastore = component.postgres
        assert datastore is not None
        assert (datastore.database, datastore.primary.conn_id, datastore.primary.region) == (
            database,
            "drflow_pg_primary",
            "us-east-1",
        )
        assert [(r.name, r.conn_id, r.region) for r in datastore.replicas] == [
            ("replica-1", "drflow_pg_replica", "us-west-2")
        ]
        policy, *more = component.backups
        assert isinstance(policy, BackupPolicy)
        # The data-corruption plan replays archived WAL of the user database.
        # Billing archives WAL too (issue 9 item 6: PostgreSQL with replica and WAL).
        assert [p.name for p in more if isinstance(p, BackupPolicy)] == (
            {"user-database": ["wal-every-4m"], "billing": ["wal-every-10m"], "analytics": ["weekly-snapshot"]}.get(
                component.name, []
            )
        )
        assert all(isinstance(p, BackupPolicy) for p in more)
        assert (policy.name, policy.method, policy.schedule) == ("daily-full", "pg_basebackup", "0 2 * * *")
        assert policy.targets == ["s3-primary", "s3-secondary"]
        expected_retention = (400, "compliance") if component.name == "billing" else (30, "standard")
        assert (policy.retention.days, policy.retention.policy) == expected_retention
        drill, *image_drills = component.drills
        assert drill.type == "restore" and drill.policy == "daily-full" and drill.validation
        # Analytics is a system image too: a weekly EBS snapshot (by tag) and its volume drill.
        assert [d.policy for d in image_drills] == (["weekly-snapshot"] if component.name == "analytics" else [])
    image = spec.component("analytics").snapshots
    assert image is not None and image.ebs is not None and image.ebs.tags == {"app": "analytics"}
    assert (image.conn_id, image.region) == ("drflow_aws", "us-east-1")
    users = spec.component("user-database").drills[0].validation
    assert [getattr(q, "query", q.type) for q in users] == [
        "select count(*) from accounts",
        "select md5(string_agg(id::text || email, ',' order by id)) from accounts",
        "checksum",
        "row-count",
        "constraints",
        "amcheck",
        "pgbench",
    ]
    billing = spec.component("billing").drills[0].validation
    assert [q.type for q in billing] == ["sql", "sql", "orphans", "constraints"]
    assert [getattr(q, "query", None) for q in billing[:2]] == [
        "select count(*) from invoices",
        "select sum(amount_cents) from invoices",
    ]


def test_api_marketplace_warnings_are_only_the_expected_rpo_gaps() -> None:
    loaded = load_spec(MARKETPLACE)
    assert {w.severity for w in loaded.warnings} == {"warning"}
    # Every component but user-database and billing, whose WAL archives run more often than their RPOs.
    assert [w.path for w in loaded.warnings if not w.path.endswith(".reviewed")] == [
        f"components[{name}].rpo" for name in SEED if name not in ("user-database", "billing")
    ]
    # Its reviews are current until they are due: only then does validation warn, at each `reviewed:`.
    today = datetime.now(UTC).date()
    stale = {r.document for r in reviews(loaded.spec, today) if r.state == "stale" and not r.inherited}
    expected = {"metadata.reviewed" if d == "spec" else f"recovery_plans[{d[5:]}].reviewed" for d in stale}
    assert {w.path for w in loaded.warnings if w.path.endswith(".reviewed")} == expected
    report = validate_paths([ROOT / "plan_specs"])
    assert report.ok and report.files == [MARKETPLACE]


def test_minimal_example_is_valid_and_its_local_path_is_absolute() -> None:
    loaded = load_spec(MINIMAL)
    assert loaded.warnings == []
    (target,) = loaded.spec.storage
    assert isinstance(target, LocalTarget)
    assert Path(target.path) == (MINIMAL.parent / "../../.sandbox/minimal-backups").resolve()


def test_relative_local_path_resolves_against_the_spec_directory(tmp_path: Path) -> None:
    loaded = load_spec_text(VALID, tmp_path / "specs" / "shop.yaml")
    (target,) = loaded.spec.storage
    assert isinstance(target, LocalTarget) and target.path == str(tmp_path / "specs" / "backups")


def test_five_mistakes_give_five_errors_at_their_lines_and_columns() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(DATA / "five_mistakes.yaml")
    found = [(d.line, d.col, d.path) for d in caught.value.errors]
    assert found == [
        (6, 3, "metadata.owner"),  # duplicate key
        (20, 10, "components[user-database].rpo"),  # bad duration
        (31, 19, "components[user-database].backups[daily-full].schedule"),  # bad cron
        (32, 31, "components[user-database].backups[daily-full].targets[1]"),  # unknown target
        (33, 9, "components[user-database].backups[daily-full].compresion"),  # typo in a key
    ]
    duplicate, duration, cron, target, typo = caught.value.errors
    assert "duplicate key 'owner'" in duplicate.message and "line 5" in duplicate.hint
    assert "'5 minutes' is not a duration" in duration.message and "5m" in duration.hint
    assert "'0 25 * * *' is not a valid cron expression" in cron.message
    assert "'s3-primry'" in target.message and "did you mean 's3-primary'?" in target.hint
    assert "unknown key 'compresion'" in typo.message and "did you mean 'compression'?" in typo.hint


def test_diagnostic_text_is_file_line_col_path_message_hint() -> None:
    diagnostic = Diagnostic("a.yaml", 3, 7, "components[x].rpo", "'5 minutes' is not a duration", "write 5m")
    assert str(diagnostic) == "a.yaml:3:7: components[x].rpo: '5 minutes' is not a duration; write 5m"
    assert diagnostic.format() == "a.yaml:3:7: error: components[x].rpo: '5 minutes' is not a duration; write 5m"
    assert str(Diagnostic("a.yaml", 1, 1, "", "empty")) == "a.yaml:1:1: empty"


def test_yaml_syntax_error_points_at_the_problem(tmp_path: Path) -> None:
    text = VALID.replace("    rpo: 1d\n", "    rpo: 1d\n    description: restore: the orders\n")
    error = only_error(text, tmp_path)
    assert (error.line, error.col) == (17, 25)  # the second ':'
    assert error.message.startswith("YAML syntax error: mapping values are not allowed")
    assert "quotes" in error.hint


def test_tabs_are_explained(tmp_path: Path) -> None:
    error = only_error(VALID.replace("  owner: platform-team", "\towner: platform-team"), tmp_path)
    assert (error.line, error.col) == (4, 1) and "tab" in error.hint


def test_empty_file_and_non_mapping_document(tmp_path: Path) -> None:
    assert "no YAML document" in only_error("# nothing\n", tmp_path).message
    errors = errors_of("- just\n- a list\n", tmp_path)
    assert "must be a mapping" in errors[0].message and (errors[0].line, errors[0].col) == (1, 1)


def test_unknown_key_gets_a_did_you_mean_and_the_allowed_keys(tmp_path: Path) -> None:
    error = only_error(VALID.replace("  owner: platform-team", "  ownr: platform-team\n  owner: x"), tmp_path)
    assert (error.line, error.col, error.path) == (4, 3, "metadata.ownr")
    assert error.hint == (
        "did you mean 'owner'? metadata keys are: name, owner, description, display_name, reviewed, review_every"
    )


def test_missing_key_points_at_its_mapping(tmp_path: Path) -> None:
    error = only_error(VALID.replace("    rpo: 1d\n", ""), tmp_path)
    assert (error.line, error.col, error.path) == (13, 5, "components[orders].rpo")
    assert error.message == "component is missing the required key 'rpo'"
    assert "duration" in error.hint and "Recovery point objective" in error.hint


def test_literal_error_lists_the_allowed_values(tmp_path: Path) -> None:
    error = only_error(VALID.replace("criticality: low", "criticality: hi"), tmp_path)
    assert error.message == "'criticality' cannot be 'hi'"
    assert error.hint == "did you mean 'high'? use one of 'critical', 'high', 'medium', 'low'"


def test_unknown_storage_type_names_the_types_that_exist(tmp_path: Path) -> None:
    error = only_error(VALID.replace("type: local", "type: ftp"), tmp_path)
    assert (error.line, error.path) == (10, "storage[local-store].type")
    assert error.message == "there is no storage type 'ftp'"
    assert "'local', 's3'" in error.hint


def test_s3_target_errors_are_located_without_the_union_tag(tmp_path: Path) -> None:
    text = VALID.replace(
        "    type: local\n    path: backups\n",
        "    type: s3\n    bucket: Bad_Bucket\n    region: us-east-1\n",
    )
    errors = errors_of(text, tmp_path)
    assert [(e.line, e.path) for e in errors] == [
        (9, "storage[local-store].conn_id"),
        (11, "storage[local-store].bucket"),
    ]
    assert "missing the required key 'conn_id'" in errors[0].message
    assert "not a valid S3 bucket name" in errors[1].message


def test_empty_value_and_quoting_hints(tmp_path: Path) -> None:
    empty = only_error(VALID.replace("rpo: 1d", "rpo:"), tmp_path)
    assert empty.message == "'rpo' has no value" and "duration" in empty.hint
    number = only_error(VALID.replace("database: orders", "database: 42"), tmp_path)
    assert number.message == "'database' must be text, not the number 42"
    assert number.hint == "put the value in quotes: database: '42'"


def test_invalid_name_suggests_a_valid_one(tmp_path: Path) -> None:
    error = only_error(VALID.replace("name: orders", "name: Orders_DB"), tmp_path)
    assert error.message == "'Orders_DB' is not a valid name" and error.hint.endswith("e.g. 'orders-db'")


def test_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    text = VALID.replace(
        "        retention:\n          days: 7\n",
        "        retention: &keep\n          days: 7\n"
        "      - <<: *policy\n        name: weekly-full\n        schedule: '@weekly'\n        retention:\n"
        "          <<: *keep\n          days: 14\n",
    ).replace("      - name: daily-full\n", "      - &policy\n        name: daily-full\n")
    loaded = load_spec_text(text, tmp_path / "spec.yaml")
    daily, weekly = loaded.spec.components[0].backups
    assert isinstance(daily, BackupPolicy) and isinstance(weekly, BackupPolicy)
    assert (weekly.name, weekly.schedule, weekly.targets, weekly.retention.days) == (
        "weekly-full",
        "@weekly",
        ["local-store"],
        14,
    )
    assert daily.retention.days == 7


def test_all_errors_of_a_file_are_reported_at_once(tmp_path: Path) -> None:
    text = (
        VALID.replace("version: 1", "version: 2")
        .replace("rto: 1h", "rto: soon")
        .replace("targets: [local-store]", "targets: [local-stor]")
    )
    messages = [e.message for e in errors_of(text, tmp_path)]
    assert len(messages) == 3
    assert any("storage target 'local-stor'" in m for m in messages)


def test_discover_is_sorted_non_recursive_and_skips_private_files(tmp_path: Path) -> None:
    for name in ["b.yaml", "a.yml", "_draft.yaml", ".hidden.yaml", "notes.txt"]:
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("x")
    missing = tmp_path / "missing.yaml"
    assert discover([tmp_path, missing, tmp_path / "b.yaml"]) == [
        tmp_path / "a.yml",
        tmp_path / "b.yaml",
        missing,
    ]
    assert discover([ROOT / "plan_specs"]) == [MARKETPLACE]


def test_one_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text("version: [\n")
    (tmp_path / "c.yaml").write_text(VALID.replace("name: shop", "name: shop-two"))
    (tmp_path / "d.yaml").write_text(VALID)  # same metadata.name as a.yaml: DAG ids would collide
    loaded, failed = load_specs([tmp_path])
    assert [item.path.name for item in loaded] == ["a.yaml", "c.yaml"]
    assert [(path.name, len(errors)) for path, errors in failed] == [("b.yaml", 1), ("d.yaml", 1)]
    duplicate = failed[1].diagnostics[0]
    assert (duplicate.line, duplicate.path) == (3, "metadata.name") and "a.yaml" in duplicate.message


def test_unreadable_file_is_a_diagnostic(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "nope.yaml")
    assert "cannot read the spec" in caught.value.errors[0].message
    (tmp_path / "latin1.yaml").write_bytes(b"version: 1\nmetadata:\n  owner: caf\xe9\n")
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "latin1.yaml")
    error = caught.value.errors[0]
    assert (error.line, error.col, error.message) == (3, 13, "the file is not UTF-8 text")


def test_validate_command_exit_codes_and_parseable_lines(tmp_path: Path) -> None:
    from drflow.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(ROOT / "plan_specs")])
    assert ok.exit_code == 0, ok.output
    assert "0 errors, 4 warnings" in ok.output
    broken = runner.invoke(app, ["validate", str(DATA / "five_mistakes.yaml")])
    assert broken.exit_code == 1
    lines = [line for line in broken.output.splitlines() if ": error: " in line]
    assert len(lines) == 5 and lines[0].startswith(f"{DATA / 'five_mistakes.yaml'}:6:3: error: metadata.owner: ")
    empty = runner.invoke(app, ["validate", str(tmp_path)])
    assert empty.exit_code == 1 and "no spec files" in empty.output


def test_loader_handles_hostile_yaml(tmp_path: Path) -> None:
    bomb = textwrap.dedent(
        """\
        a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
        """
    )
    assert "expands to more than" in only_error(bomb, tmp_path).message
    assert "contains it" in errors_of("a: &a [1, *a]\n", tmp_path)[-1].message
    assert "unknown YAML tag '!include'" in errors_of("version: !include other.yaml\n", tmp_path)[-1].message
