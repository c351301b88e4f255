"""Governance in the spec: data sovereignty, replication mode by criticality, documentation currency."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from drflow.engines.postgres.sync_replication import required_standbys, sync_faults
from drflow.spec.check_currency import reviews
from drflow.spec.currency import due_date, parse_review_period
from tests.unit.test_spec_check import errors_of, load

SPEC = """\
version: 1
metadata: {name: shop, owner: platform-team}
regions:
  - {name: eu-central-1, role: primary}
  - {name: eu-west-1}
  - {name: us-east-1}
storage:
  - {name: s3-frankfurt, type: s3, bucket: shop-fra, conn_id: aws, region: eu-central-1}
  - {name: s3-ireland, type: s3, bucket: shop-dub, conn_id: aws, region: eu-west-1}
  - {name: s3-virginia, type: s3, bucket: shop-iad, conn_id: aws, region: us-east-1}
components:
  - name: customers
    criticality: high
    rto: 1h
    rpo: 1d
    allowed_regions: [eu-central-1, eu-west-1]
    datastore:
      type: postgres
      database: customers
      primary: {conn_id: pg, region: eu-central-1}
      replicas: [{name: replica-1, conn_id: pg_r, region: eu-west-1}]
    backups:
      - name: daily-full
        type: full
        method: pg_basebackup
        schedule: "0 2 * * *"
        targets: [s3-frankfurt]
        copy_to: [s3-ireland]
        retention: {days: 7}
    drills:
      - {name: weekly, type: restore, schedule: "0 4 * * 0"}
"""


def position(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based line and column of the n-th ``needle`` in ``text``."""
    at = -1
    for _ in range(occurrence):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def test_data_inside_the_allowed_regions_validates(tmp_path: Path) -> None:
    loaded = load(SPEC, tmp_path)
    assert loaded.spec.components[0].allowed_regions == ["eu-central-1", "eu-west-1"]


def test_a_copy_outside_the_allowed_regions_is_refused_at_its_line(tmp_path: Path) -> None:
    text = SPEC.replace("copy_to: [s3-ireland]", "copy_to: [s3-ireland, s3-virginia]")
    [error] = errors_of(text, tmp_path)
    assert (error.line, error.col) == position(text, "s3-virginia]")
    assert error.path == "components[customers].backups[daily-full].copy_to[1]"
    assert error.message == (
        "storage target 's3-virginia', which backup policy 'daily-full' copies backups to, is in region 'us-east-1', "
        "outside the regions component 'customers' may keep data in (allowed_regions: 'eu-central-1', 'eu-west-1')"
    )
    assert error.hint == (
        "use a target in 'eu-central-1', 'eu-west-1' ('s3-frankfurt', 's3-ireland'), "
        "or add the region to allowed_regions if the data may live there"
    )


def test_replicas_targets_and_snapshot_copies_outside_are_refused_each_at_its_line(tmp_path: Path) -> None:
    text = (
        SPEC.replace("region: eu-west-1}]", "region: us-east-1}]")
        .replace("targets: [s3-frankfurt]", "targets: [s3-frankfurt, s3-virginia]")
        .replace(
            "  - {name: s3-virginia,", "  - {name: local, type: local, path: /var/tmp/shop}\n  - {name: s3-virginia,"
        )
        .replace("copy_to: [s3-ireland]", "copy_to: [local]")
        .replace(
            "    drills:",
            "    snapshots: {conn_id: aws, region: eu-central-1, ebs: {tags: {app: shop}}}\n    drills:",
        )
    )
    errors = {e.path: e for e in errors_of(text, tmp_path)}
    assert set(errors) == {
        "components[customers].datastore.replicas[replica-1].region",
        "components[customers].backups[daily-full].targets[1]",
        "components[customers].backups[daily-full].copy_to[0]",
        "components[customers].snapshots",
    }
    replica = errors["components[customers].datastore.replicas[replica-1].region"]
    assert (replica.line, replica.col) == position(text, "us-east-1}]")
    assert replica.message.startswith("replica 'replica-1' is in region 'us-east-1', outside the regions")
    local = errors["components[customers].backups[daily-full].copy_to[0]"]
    assert "declares no region, so drflow cannot tell" in local.message
    # No copy_to: every secondary region gets a snapshot copy, us-east-1 too.
    snapshot = errors["components[customers].snapshots"]
    assert "by default every secondary region gets one" in snapshot.message and "'us-east-1'" in snapshot.message
    assert snapshot.hint.startswith("set snapshots.copy_to to regions in 'eu-central-1', 'eu-west-1'")
    allowed = text.replace("ebs: {tags: {app: shop}}}", "ebs: {tags: {app: shop}}, copy_to: [eu-west-1]}")
    assert "components[customers].snapshots" not in {e.path for e in errors_of(allowed, tmp_path)}


def test_an_undeclared_allowed_region_is_an_error_with_the_declared_ones(tmp_path: Path) -> None:
    text = SPEC.replace("allowed_regions: [eu-central-1, eu-west-1]", "allowed_regions: [eu-central-1, eu-wset-1]")
    errors = errors_of(text, tmp_path)
    undeclared = next(e for e in errors if e.path == "components[customers].allowed_regions[1]")
    assert undeclared.hint.startswith("did you mean 'eu-west-1'?")


def test_replication_mode_follows_criticality_and_warns_for_asynchronous_critical_data(tmp_path: Path) -> None:
    assert load(SPEC, tmp_path).spec.components[0].replication_mode == "asynchronous"
    critical = SPEC.replace("criticality: high", "criticality: critical")
    assert load(critical, tmp_path).spec.components[0].replication_mode == "synchronous"

    text = critical.replace("region: eu-west-1}]\n", "region: eu-west-1}]\n      replication: {mode: asynchronous}\n")
    [warning] = [w for w in load(text, tmp_path).warnings if w.path.endswith(".mode")]
    assert (warning.line, warning.col) == position(text, "asynchronous}")
    assert warning.message.startswith("critical component 'customers' replicates asynchronously")

    lonely = SPEC.replace("      replicas: [{name: replica-1, conn_id: pg_r, region: eu-west-1}]\n", "").replace(
        "primary: {conn_id: pg, region: eu-central-1}\n",
        "primary: {conn_id: pg, region: eu-central-1}\n      replication: {mode: synchronous}\n",
    )
    [error] = errors_of(lonely, tmp_path)
    assert error.message == "component 'customers' asks for synchronous replication but has no replica"


def test_stale_documents_warn_at_their_reviewed_line_and_plans_inherit_the_specs_review(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    old, recent = today - timedelta(days=400), today - timedelta(days=10)
    plans = "notifications: []\nrecovery_plans:\n" + "".join(
        f"  - name: {name}\n    scenario: data-corruption\n    status: approved\n    components: [customers]\n"
        f"    approval: {{approvers: [a, b]}}\n{extra}"
        "    steps: [{name: s, type: manual, assignees: [a], description: d, instructions: do it}]\n"
        for name, extra in (("restore", f"    reviewed: {old}\n    owner: dba-team\n"), ("failover", ""))
    )
    text = SPEC.replace("owner: platform-team}", f"owner: platform-team, reviewed: {recent}}}") + plans
    loaded = load(text, tmp_path)
    [stale] = [w for w in loaded.warnings if w.path.endswith("reviewed")]
    assert stale.path == "recovery_plans[restore].reviewed" and (stale.line, stale.col) == position(text, str(old))
    assert f"was last reviewed on {old} and was due again on {due_date(old, '6mo')}" in stale.message
    assert stale.hint.startswith("have its owner 'dba-team' review it")
    states = {r.document: (r.state, r.inherited, r.owner) for r in reviews(loaded.spec, today)}
    assert states == {
        "spec": ("current", False, "platform-team"),
        "plan restore": ("stale", False, "dba-team"),
        "plan failover": ("current", True, "platform-team"),
    }

    spec_stale = text.replace(f"reviewed: {recent}}}", f"reviewed: {old}}}")
    warning = next(w for w in load(spec_stale, tmp_path).warnings if w.path == "metadata.reviewed")
    assert "(it covers plan failover, which state no date of their own)" in warning.message
    future = text.replace(f"reviewed: {recent}}}", f"reviewed: {today + timedelta(days=30)}}}")
    assert [e.path for e in errors_of(future, tmp_path)] == ["metadata.reviewed"]
    malformed = text.replace(f"reviewed: {recent}}}", "reviewed: 2026-02-30, review_every: 6 months}")
    bad = {e.path: e for e in errors_of(malformed, tmp_path)}
    assert set(bad) == {"metadata.reviewed", "metadata.review_every"}
    assert bad["metadata.reviewed"].hint == "write the day of the last review as YYYY-MM-DD, e.g. 2026-11-16"
    # YAML reads a day and a time as a timestamp: the error asks for the day, not for a timezone.
    timed = text.replace(f"    reviewed: {old}\n", f"    reviewed: {old} 10:00:00\n")
    [at_time] = errors_of(timed, tmp_path)
    assert at_time.path == "recovery_plans[restore].reviewed" and (at_time.line, at_time.col) == position(
        timed, str(old)
    )
    assert at_time.message == f"'{old} 10:00:00' is a time, but reviewed: is the day of the last review"
    assert at_time.hint == f"write the day alone, as YYYY-MM-DD: {old}"


@pytest.mark.parametrize(
    ("reviewed", "every", "due"),
    [
        (date(2026, 5, 31), "6mo", date(2026, 11, 30)),
        (date(2026, 8, 31), "6mo", date(2027, 2, 28)),
        (date(2027, 8, 31), "6mo", date(2028, 2, 29)),
        (date(2026, 11, 16), "1y", date(2027, 11, 16)),
        (date(2026, 11, 16), "90d", date(2027, 2, 14)),
        (date(2026, 11, 16), "2w", date(2026, 11, 30)),
    ],
)
def test_review_periods_are_calendar_periods(reviewed: date, every: str, due: date) -> None:
    assert due_date(reviewed, parse_review_period(every)) == due


def test_review_period_notation() -> None:
    assert parse_review_period(" 12mo ") == "12mo"
    for wrong in ("6 months", "0mo", "1h", ""):
        with pytest.raises(ValueError, match="e.g. 6mo, 1y or 90d"):
            parse_review_period(wrong)


@pytest.mark.parametrize(
    ("names", "count"),
    [("", 0), ("replica-1", 1), ("a, b", 1), ("FIRST 2 (a, b, c)", 2), ("ANY 1 (a, b)", 1), ('2 ("a", b)', 2)],
)
def test_how_many_synchronous_standbys_the_primary_asks_for(names: str, count: int) -> None:
    assert required_standbys(names) == count


def test_synchronous_faults() -> None:
    standby = {"application_name": "replica-1", "state": "streaming", "sync_state": "sync"}
    healthy = {"standby_names": "FIRST 1 (replica-1)", "synchronous_commit": "on", "standbys": [standby]}
    assert sync_faults(healthy, "users", ["replica-1"]) == []
    quorum = {**healthy, "standby_names": "ANY 2 (replica-1, replica-2)"}
    assert [code for code, _ in sync_faults(quorum, "users", [])] == ["no_sync_standby"]
    renamed = {**healthy, "standbys": [{**standby, "application_name": "walreceiver", "sync_state": "async"}]}
    [(code, message)] = sync_faults(renamed, "users", ["replica-1"])
    assert code == "no_sync_standby" and "walreceiver (async)" in message
    off = {
        **healthy,
        "standby_names": "",
        "synchronous_commit": "off",
        "standbys": [{**standby, "sync_state": "async"}],
    }
    assert [code for code, _ in sync_faults(off, "users", ["replica-1"])] == ["sync_fallback", "sync_fallback"]


SAME_CLUSTER = """\
  - name: analytics
    criticality: low
    rto: 1d
    rpo: 1d
    datastore:
      type: postgres
      database: analytics
      primary: {conn_id: pg, region: eu-central-1}
      replicas: [{name: reporting, conn_id: pg_us, region: us-east-1}]
    backups:
      - {name: nightly, type: full, method: pg_basebackup, schedule: "0 3 * * *", targets: [s3-virginia],
         retention: {days: 7}}
      - {name: dump, type: full, method: pg_dump, schedule: "0 5 * * *", targets: [s3-virginia],
         retention: {days: 7}}
"""


def test_physical_copies_another_component_makes_of_the_same_cluster_are_held_to_the_allowed_regions(
    tmp_path: Path,
) -> None:
    text = SPEC + SAME_CLUSTER
    errors = {e.path: e for e in errors_of(text, tmp_path)}
    # analytics may keep data anywhere; its replica and base backups copy the cluster, customers included.
    assert set(errors) == {
        "components[analytics].datastore.replicas[reporting].region",
        "components[analytics].backups[nightly].targets[0]",
    }
    replica = errors["components[analytics].datastore.replicas[reporting].region"]
    assert (replica.line, replica.col) == position(text, "us-east-1}]")
    assert replica.message == (
        "replica 'reporting' (a copy of the whole PostgreSQL cluster of component 'analytics', which holds the "
        "database of component 'customers' too) is in region 'us-east-1', outside the regions component "
        "'customers' may keep data in (allowed_regions: 'eu-central-1', 'eu-west-1')"
    )
    assert replica.hint.startswith("keep every replica and physical backup (base backup, WAL, pgBackRest) of that")
    assert "storage target 's3-virginia', which backup policy 'nightly' of component 'analytics' writes" in (
        errors["components[analytics].backups[nightly].targets[0]"].message
    )
    # On a cluster of its own (another primary), analytics' copies hold nothing of customers.
    own = "primary: {conn_id: pg2, region: eu-central-1}\n      replicas: [{name: reporting"
    load(text.replace(own.replace("pg2", "pg"), own), tmp_path)


def test_a_bucket_of_no_known_region_is_refused_under_allowed_regions(tmp_path: Path) -> None:
    assets = """\
  - name: assets
    criticality: low
    rto: 1d
    rpo: 1d
    allowed_regions: [eu-central-1]
    datastore: {type: s3-prefix, bucket: shop-assets, conn_id: aws}
"""
    [error] = errors_of(SPEC + assets, tmp_path)
    assert error.path == "components[assets].datastore"
    assert error.message.startswith("bucket 'shop-assets' declares no region, so drflow cannot tell whether")
    assert error.hint == "give the datastore its region: (one of its allowed_regions)"
    load(SPEC + assets.replace("conn_id: aws}", "conn_id: aws, region: eu-central-1}"), tmp_path)


def test_an_asynchronous_spec_hears_only_of_commits_that_hang() -> None:
    standby = {"application_name": "replica-1", "state": "streaming", "sync_state": "async"}
    asynchronous = {"standby_names": "", "synchronous_commit": "on", "standbys": [standby]}
    assert sync_faults(asynchronous, "users", ["replica-1"], required=False) == []  # as the spec asks
    waiting = {"standby_names": "FIRST 1 (replica-1)", "synchronous_commit": "on", "standbys": []}
    [(code, message)] = sync_faults(waiting, "users", ["replica-1"], required=False)
    assert code == "no_sync_standby"
    assert message.startswith("the spec asks for asynchronous replication of this data, but the primary is config")
    assert "writes hang" in message and message.endswith("(empty, if it should not wait for standbys)")
    local = {**waiting, "synchronous_commit": "local", "standbys": [{**standby, "sync_state": "sync"}]}
    assert sync_faults(local, "users", ["replica-1"], required=False) == []
