"""Drill reports, exercise results and recovery records, read as one kind of evidence of recoverability.

Pure: each reader takes a report as stored (its name and JSON) and returns an :class:`Evidence`, or None
when the report says nothing about recovery (a refused declaration recovered nothing and failed nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drflow.when import stored_time

DRILL, EXERCISE, RECOVERY = "drill", "exercise", "recovery"
REPORT_KINDS = (DRILL, EXERCISE, RECOVERY)
# Exercises that restore nothing: they prove the people and the plan, not a recovery time.
NOT_RECOVERING = frozenset({"tabletop", "walkthrough"})
_STAMP = re.compile(r"^(\d{8}T\d{6})(\d{3})?Z")


@dataclass(frozen=True)
class Evidence:
    """One drill, exercise or real recovery of a component: when, whether it worked, what it measured."""

    kind: str
    name: str
    """The drill, exercise or plan name."""
    at: datetime
    passed: bool
    recovers: bool
    """It restored or failed over something (so it counts for recovery time and recovery success)."""
    rto_s: float | None
    rpo_s: float | None
    checks: int
    checks_passed: int
    dag_id: str | None
    run_id: str | None
    detail: str
    key: str
    """Where it is stored (its report key), to tell copies of one report apart from two reports."""
    components: tuple[str, ...] = ()
    type: str | None = None

    @property
    def identity(self) -> tuple[str, ...]:
        """The same for copies of one report (in several targets), different for two reports."""
        return (self.kind, self.dag_id or "", self.run_id) if self.run_id else (self.kind, self.key)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "type": self.type,
            "at": self.at.isoformat(),
            "passed": self.passed,
            "rto_s": self.rto_s,
            "rpo_s": self.rpo_s,
            "checks": self.checks,
            "checks_passed": self.checks_passed,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "detail": self.detail,
        }


def stamp_time(name: str) -> datetime | None:
    """The time a report name starts with (``20261201T021216Z-…``), or None."""
    match = _STAMP.match(name)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def from_report(kind: str, key: str, data: Mapping[str, Any]) -> Evidence | None:
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    reader = {DRILL: _drill, EXERCISE: _exercise, RECOVERY: _recovery}[kind]
    return reader(key, name, data)


def _drill(key: str, name: str, data: Mapping[str, Any]) -> Evidence | None:
    at = stored_time(data.get("finished_at")) or stored_time(data.get("started_at")) or stamp_time(name)
    if at is None:
        return None
    checks = [c for c in data.get("checks") or [] if isinstance(c, Mapping)]
    problems = [str(p) for p in data.get("problems") or []]
    passed = bool(data.get("passed"))
    if not passed and not problems and data.get("rto_met") is False:
        problems.append("over the RTO")
    return Evidence(
        kind=DRILL,
        name=str(data.get("drill") or name.split("-", 1)[-1]),
        at=at,
        passed=passed,
        recovers=True,
        # A snapshot drill's total includes deleting what it created; its restore_s is the recovery.
        rto_s=_number(data.get("restore_s")) if data.get("restore_s") is not None else _number(data.get("total_s")),
        rpo_s=_number(data.get("backup_age_s")),
        checks=len(checks),
        checks_passed=sum(1 for c in checks if c.get("passed")),
        dag_id=data.get("dag_id"),
        run_id=data.get("run_id"),
        detail="; ".join(problems),
        key=key,
    )


def _exercise(key: str, name: str, data: Mapping[str, Any]) -> Evidence | None:
    at = stored_time(data.get("finished_at")) or stored_time(data.get("started_at")) or stamp_time(name)
    if at is None:
        return None
    measured = _mapping(data.get("measured"))
    findings = [f for f in data.get("findings") or [] if isinstance(f, Mapping)]
    failed = [f"{f.get('step')}: {f.get('detail')}" for f in findings if not f.get("ok")]
    kind_of = str(data.get("type") or "")
    return Evidence(
        kind=EXERCISE,
        name=str(data.get("exercise") or name),
        at=at,
        passed=data.get("outcome") == "passed",
        recovers=kind_of not in NOT_RECOVERING,
        rto_s=_number(measured.get("rto_s")),
        rpo_s=_number(measured.get("rpo_s")),
        checks=len(findings),
        checks_passed=len(findings) - len(failed),
        dag_id=data.get("dag_id"),
        run_id=data.get("run_id"),
        detail="; ".join(failed),
        key=key,
        components=tuple(str(c) for c in data.get("components") or ()),
        type=kind_of or None,
    )


def _recovery(key: str, name: str, data: Mapping[str, Any]) -> Evidence | None:
    outcome = data.get("outcome")
    if outcome not in ("recovered", "failed", "incomplete"):
        return None  # refused (nothing was attempted) or a partial record of unknown outcome
    run = _mapping(data.get("run"))
    at = stored_time(run.get("end")) or stored_time(data.get("recorded_at")) or stamp_time(name)
    if at is None:
        return None
    recovery, loss = _mapping(data.get("recovery")), _mapping(data.get("data_loss"))
    verifications = [s for s in data.get("steps") or [] if isinstance(s, Mapping) and s.get("verification")]
    return Evidence(
        kind=RECOVERY,
        name=str(data.get("plan") or name),
        at=at,
        passed=outcome == "recovered",
        recovers=True,
        rto_s=_number(recovery.get("measured_s")),
        rpo_s=_number(loss.get("measured_s")),
        checks=len(verifications),
        checks_passed=sum(1 for s in verifications if s.get("state") == "success"),
        dag_id=data.get("dag_id"),
        run_id=data.get("run_id"),
        detail="; ".join(str(p) for p in data.get("problems") or []),
        key=key,
        components=tuple(str(c) for c in data.get("components") or ()),
    )
