"""Retention decisions over catalog entries (the pure part of expiry; the integration test expires real backups)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from drflow.cli import app
from drflow.contracts import RetentionRun
from drflow.plan.build import build_plans
from drflow.spec.diagnostics import SpecError
from drflow.spec.load import load_spec_text
from drflow.store.expiry import PolicyRules, Verdict, decide, deletion_order
from drflow.store.manifest import BackupManifest
from drflow.store.pins import Pin

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SHA = "0" * 64


def entry(backup_id: str, day: float, **fields: Any) -> BackupManifest:
    finished = T0 + timedelta(days=day)
    values: dict[str, Any] = {
        "backup_id": backup_id,
        "spec": "s",
        "component": "c",
        "policy": "daily-full",
        "backup_type": "full",
        "method": "pg_basebackup",
        "started_at": finished - timedelta(minutes=1),
        "finished_at": finished,
        "retention_days": 7,
        "objects": [{"name": "base.tar", "size": 1, "sha256": SHA}],
    }
    values.update(fields)
    return BackupManifest.model_validate(values)


def full(backup_id: str, day: float, start: int) -> BackupManifest:
    return entry(backup_id, day, start_lsn=f"0/{start:X}000000", end_lsn=f"0/{start:X}000100")


def wal(backup_id: str, day: float, start: int, end: int, parent: str) -> BackupManifest:
    return entry(
        backup_id,
        day,
        policy="wal",
        backup_type="incremental",
        method="pg_receivewal",
        parent_id=parent,
        start_lsn=f"0/{start:X}000000",
        end_lsn=f"0/{end:X}000000",
    )


def chain() -> list[BackupManifest]:
    """Fulls on days 0, 10, 20, 30 with WAL after each, kept 7 days, at least 2 fulls."""
    out: list[BackupManifest] = []
    for n, day in enumerate((0, 10, 20, 30)):
        base = full(f"f{n}", day, 16 * n + 1)
        out.append(base)
        out.append(wal(f"w{n}a", day + 1, 16 * n + 1, 16 * n + 5, base.backup_id))
        out.append(wal(f"w{n}b", day + 5, 16 * n + 5, 16 * n + 17, f"w{n}a"))
    return out


RULES = {"daily-full": PolicyRules(days=7, min_copies=2), "wal": PolicyRules(days=7)}


def verdicts(manifests: list[BackupManifest], now: datetime, **kwargs: Any) -> dict[str, Verdict]:
    kwargs.setdefault("pins", {})
    kwargs.setdefault("valid", lambda m: True)
    return {v.backup_id: v for v in decide(manifests, kwargs.pop("rules", RULES), now=now, **kwargs)}


def deleted(result: dict[str, Verdict]) -> set[str]:
    return {k for k, v in result.items() if v.delete}


def test_old_fulls_go_but_min_copies_and_the_wal_they_need_stay() -> None:
    now = T0 + timedelta(days=40)  # everything but w3b (day 35) is older than 7 days
    result = verdicts(chain(), now)
    assert deleted(result) == {"f0", "w0a", "w0b", "f1", "w1a", "w1b"}
    assert "newest valid full" in result["f3"].reason and "min_copies" in result["f2"].reason
    assert "replay from kept full backup f2" in result["w2a"].reason
    assert "younger than 7 days" in result["w3b"].reason


def test_young_wal_keeps_the_base_it_replays_from_and_older_wal_goes_with_the_older_base() -> None:
    now = T0 + timedelta(days=21)  # w1b (day 15) is young; its base f1 (day 10) is old and not the newest
    result = verdicts(chain()[:9], now, rules={"daily-full": PolicyRules(days=7, min_copies=1), "wal": PolicyRules(7)})
    assert not result["f1"].delete and "kept WAL w1b replays from" in result["f1"].reason
    assert not result["w1a"].delete and "replay from kept full backup f1" in result["w1a"].reason
    assert deleted(result) == {"f0", "w0a", "w0b"}
    assert "nothing can replay it" in result["w0b"].reason


def test_a_pinned_full_survives_without_keeping_the_wal_after_it() -> None:
    now = T0 + timedelta(days=40)
    pin = Pin(backup_id="f0", component="c", reason="audit 2026-17", pinned_by="ana", pinned_at=now)
    result = verdicts(chain(), now, pins={"f0": pin})
    assert not result["f0"].delete and "pinned by ana" in result["f0"].reason and "audit 2026-17" in result["f0"].reason
    assert result["w0a"].delete and result["f1"].delete


def test_only_valid_fulls_count_as_copies() -> None:
    now = T0 + timedelta(days=40)
    result = verdicts(chain(), now, valid=lambda m: m.backup_id != "f3")
    assert "kept WAL w3b replays from" in result["f3"].reason  # not counted as a copy, but young WAL needs it
    assert not result["f2"].delete and not result["f1"].delete  # two valid copies: f2 and f1
    assert "newest valid full" in result["f2"].reason and "min_copies" in result["f1"].reason


def test_locked_entries_are_skipped_until_their_retain_until() -> None:
    old = entry("old", 0, retention_policy="compliance", retention_days=30)
    manifests = [old, full("a", 50, 1), full("b", 60, 17)]
    before = verdicts(manifests, T0 + timedelta(days=29))
    assert not before["old"].delete and before["old"].locked and "compliance lock" in before["old"].reason
    after = verdicts(manifests, T0 + timedelta(days=70), rules={"daily-full": PolicyRules(days=7, min_copies=2)})
    assert after["old"].delete
    locked = entry("x", 0, extra={"object_lock": {"mode": "GOVERNANCE", "retain_until": "2027-12-31T00:00:00+00:00"}})
    result = verdicts([locked, full("a", 50, 1), full("b", 60, 17)], T0 + timedelta(days=70))
    assert result["x"].locked and "governance lock" in result["x"].reason


def test_a_kept_incremental_keeps_its_whole_chain_and_children_go_before_parents() -> None:
    f = entry("f", 0, method="pgbackrest_like")
    d = entry("d", 1, backup_type="differential", method="pgbackrest_like", parent_id="f")
    i = entry("i", 9, backup_type="incremental", method="pgbackrest_like", parent_id="d")
    newer = [entry("g", 8, method="pgbackrest_like"), entry("h", 9.5, method="pgbackrest_like")]
    result = verdicts([f, d, *newer, i], T0 + timedelta(days=10))
    assert not result["i"].delete and not result["d"].delete and not result["f"].delete
    assert "parent of kept differential backup d" in result["f"].reason
    gone = verdicts([f, d, *newer, i], T0 + timedelta(days=30))
    order = [m.backup_id for m in deletion_order(list(gone.values()))]
    assert order.index("i") < order.index("d") < order.index("f")


def test_wal_is_deleted_oldest_first_and_fulls_last() -> None:
    result = verdicts(chain(), T0 + timedelta(days=40))
    order = [m.backup_id for m in deletion_order(list(result.values()))]
    assert order == ["w0a", "w0b", "w1a", "w1b", "f0", "f1"]


def test_pgbackrest_records_go_only_when_pgbackrest_no_longer_lists_them() -> None:
    records = [entry(f"p{n}", n, method="pgbackrest", extra={"label": f"L{n}"}) for n in range(3)]
    now = T0 + timedelta(days=90)
    assert not deleted(verdicts(records, now))  # labels unknown: every record stays
    assert deleted(verdicts(records, now, pgbackrest_labels={"L1", "L2"})) == {"p0"}


API_SPEC = Path(__file__).resolve().parents[2] / "plan_specs" / "api-marketplace.yaml"


def test_min_copies_defaults_to_2_and_0_is_refused_at_its_line(tmp_path: Path) -> None:
    text = API_SPEC.read_text()
    spec = load_spec_text(text, API_SPEC).spec
    assert {p.retention.min_copies for c in spec.components for p in c.backup_policies} == {2}
    broken = text.replace("          policy: standard\n", "          policy: standard\n          min_copies: 0\n", 1)
    with pytest.raises(SpecError) as caught:
        load_spec_text(broken, tmp_path / "spec.yaml")
    [error] = [d for d in caught.value.diagnostics if "min_copies" in str(d)]
    assert "must be at least 1, not 0" in str(error) and error.line == 1 + broken[: broken.index("min_copies")].count(
        "\n"
    )


def test_one_retention_dag_per_spec_with_a_task_per_component_with_backups() -> None:
    spec = load_spec_text(API_SPEC.read_text(), API_SPEC).spec
    [plan] = [p for p in build_plans(spec, API_SPEC) if p.kind == "retention"]
    assert plan.dag_id == "dr.api-marketplace.retention" and plan.schedule == "30 4 * * *"
    assert [t.task_id for t in plan.tasks] == [f"expire_{c.name}" for c in spec.components if c.backup_policies]
    run = RetentionRun.from_params(plan.tasks[0].params["retention"])
    assert run.policies[0].min_copies == 2 and run.pgbackrest is None
    assert [t["name"] for t in run.targets] == ["s3-primary", "s3-secondary"]


def test_expire_refuses_a_now_without_timezone() -> None:
    result = CliRunner().invoke(app, ["expire", "--spec", str(API_SPEC), "--now", "2026-12-01T10:00:00"])
    assert result.exit_code == 1 and "has no timezone; write it as 2026-12-01T10:00:00+00:00" in result.output


def test_dumps_and_snapshots_are_fulls_of_their_own_policy_and_never_pitr_bases() -> None:
    dumps = [entry(f"d{n}", n, policy="nightly-dump", method="pg_dump") for n in range(4)]
    snaps = [entry(f"s{n}", n, policy="snap", backup_type="snapshot", method="ebs") for n in range(3)]
    rules = {**RULES, "nightly-dump": PolicyRules(days=7, min_copies=3), "snap": PolicyRules(days=1, min_copies=1)}
    result = verdicts([*chain(), *dumps, *snaps], T0 + timedelta(days=40), rules=rules)
    assert deleted(result) == {"f0", "w0a", "w0b", "f1", "w1a", "w1b", "d0", "s0", "s1"}
    assert "replay from kept full backup f2" in result["w2a"].reason  # a dump does not move the WAL floor
