"""Simulation: a recovery plan run against isolated copies, measuring the recovery time and the data loss it
would have had, touching nothing in production. Shared by the simulation DAG and `drflow simulate`.

1. Production is read, never written: each node's health (one ``select``) says which node is the primary now,
   its clock and its WAL position.
2. Copies (``jobs.simulation_copies``): for each component whose database steps name nodes, the newest point
   the store reaches (the newest full backup plus the archived WAL after it) is restored into a scratch
   instance standing for the node that is primary now; every other node named is a standby of that copy.
3. The plan's steps in order, each on the copies (``jobs.simulation_steps``). A step whose upstream did not
   pass is not run. People are not asked or waited for.
4. Always, whatever failed: the test DNS records are deleted, every copy is stopped, the scratch directory
   is removed.

Measured: the recovery time is the steps' wall clock from the first step's start to the end of the last
``verification`` step (else the last step), when every step passed; the data loss is the worst of each
copy's (and each restore step's) last transaction against the source's now, and each promotion's lag on
the copies. The outcome is ``passed`` when every finding is, the objectives included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drflow.contracts import ComponentFacts, SimulationRun
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.refusal import Refused
from drflow.hosts import Host, LocalHost
from drflow.jobs.simulation_copies import Copies, SourceNow, data_loss, production_roles, source_now
from drflow.jobs.simulation_steps import StepSimulator, copies_needed
from drflow.store.exercise_results import exercise_result
from drflow.units import human_duration
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)

EXERCISE_TYPE = "simulation"


@dataclass(frozen=True)
class Finding:
    step: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "ok": self.ok, "detail": self.detail}


@dataclass
class Measures:
    """What the simulation measured on its way: step timings and every source of data loss."""

    first_start: float | None = None
    end: float | None = None
    verified_by: str | None = None
    all_passed: bool = True
    losses: list[tuple[float, str]] = field(default_factory=list)
    """(seconds lost, how it was measured) per source."""

    @property
    def rto_s(self) -> float | None:
        if not self.all_passed or self.first_start is None or self.end is None:
            return None
        return round(self.end - self.first_start, 3)


def run_simulation(
    run: SimulationRun, *, run_id: str, host: Host | None = None, say: Callable[[str], None] = log.info
) -> dict[str, Any]:
    """Simulate ``run``'s plan on copies; return the exercise result (see :func:`exercise_result`)."""
    host = host or LocalHost()
    started_at = datetime.now(UTC)
    began = time.monotonic()
    findings: list[Finding] = []
    measures = Measures()

    def note(finding: Finding) -> None:
        findings.append(finding)
        say(f"{'ok  ' if finding.ok else 'FAIL'} {finding.step}: {finding.detail}")

    told: set[str] = set()  # components on one cluster share nodes: each node that cannot be addressed once
    now = {name: _source_now(facts, told) for name, facts in run.plan.components.items() if facts.nodes}
    with scratch_dir(run.work_dir, "simulation") as root:
        host.chown_to_db_user(root)
        copies = Copies(root, run.plan.spec, host, run.work_dir)
        steps = StepSimulator(run.plan, copies)
        try:
            if _make_copies(run, copies, now, note, measures):
                _run_steps(run, steps, note, measures)
            else:
                for step in run.steps:
                    note(Finding(step.name, False, "not run: the copies could not be made"))
                measures.all_passed = False
        finally:
            problems = steps.remove_records() + copies.remove()
            what = f"stopped {len(copies.clusters)} scratch instances, deleted {len(steps.records)} test records"
            note(Finding("cleanup", not problems, "; ".join(problems) or what))
    for name, point in steps.restored.items():
        component = str(run.step(name).component)
        lost, how = data_loss(point, now[component][1] if component in now else source_now(None))
        measures.losses.append((lost, f"{name} ({component}): {how}"))
    for name, lag in steps.promotion_lag.items():
        measures.losses.append((lag, f"{name}: replica lag at promotion on the copies"))
    for finding in _objectives(run, measures):
        note(finding)
    return exercise_result(
        spec=run.plan.spec,
        exercise=run.exercise,
        type=EXERCISE_TYPE,
        plan=run.plan.plan,
        scenario=run.plan.scenario,
        components=list(run.plan.components),
        dag_id=run.dag_id,
        run_id=run_id,
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=time.monotonic() - began),
        participants=[],
        outcome="passed" if findings and all(f.ok for f in findings) else "failed",
        rto_s=measures.rto_s,
        rpo_s=max((lost for lost, _ in measures.losses), default=None),
        objectives=(run.plan.rto_s, run.plan.rpo_s),
        findings=[f.to_json() for f in findings],
    )


def _source_now(facts: ComponentFacts, told: set[str]) -> tuple[str | None, SourceNow]:
    """Which production node is the primary now, and its clock and WAL position (read-only)."""
    conns: dict[str, PgConnInfo] = {}
    for name, node in facts.nodes.items():
        try:
            conns[name] = PgConnInfo.from_airflow_conn(node.conn_id, dbname=facts.database)
        except Exception as exc:  # a node drflow cannot address is one it cannot read: reported in the note
            if node.conn_id not in told:
                told.add(node.conn_id)
                log.warning("node %s cannot be addressed: %s", name, exc)
    primary, health = production_roles(conns)
    return primary, source_now(health.get(primary) if primary else None)


def _make_copies(
    run: SimulationRun,
    copies: Copies,
    now: Mapping[str, tuple[str | None, SourceNow]],
    note: Callable[[Finding], None],
    measures: Measures,
) -> bool:
    for component, names in sorted(copies_needed(run.plan, list(run.steps)).items()):
        facts = run.plan.component(component)
        started = time.monotonic()
        primary, when = now[component]
        restored_as = primary if primary is not None and primary in facts.nodes else "primary"
        try:
            copy, point = copies.restore_newest(
                component,
                restored_as,
                facts.targets,
                database=facts.database or "postgres",
                bin_dir=Path(facts.bin_dir or ""),
            )
            standbys = [
                copies.add_standby(component, name, copy, database=facts.database or "postgres")
                for name in sorted(names - {restored_as})
            ]
        except Exception as exc:  # no backup, no intact copy, a server that does not start: the finding says which
            note(Finding(f"copies of {component}", False, _failure(exc)))
            return False
        lost, how = data_loss(point, when)
        measures.losses.append((lost, f"the copy of {component}: {how}"))
        others = "".join(f"; {node.describe()} streams from it" for node in standbys)
        note(
            Finding(
                f"copies of {component}",
                True,
                f"{copy.describe()} stands for {restored_as} (the primary now): {point.how}{others}; "
                f"made in {human_duration(round(time.monotonic() - started, 1))}, not counted in the recovery time",
            )
        )
    return True


def _run_steps(run: SimulationRun, steps: StepSimulator, note: Callable[[Finding], None], measures: Measures) -> None:
    passed: dict[str, bool] = {}
    for step in run.steps:
        blocked = [name for name in run.after.get(step.name, ()) if not passed.get(name)]
        if blocked:
            passed[step.name] = measures.all_passed = False
            note(Finding(step.name, False, f"not run: it waits for {', '.join(blocked)}, which did not pass"))
            continue
        started = time.monotonic()
        if measures.first_start is None:
            measures.first_start = started
        try:
            detail, ok = steps.run(step), True
        except Exception as exc:  # a simulation reports every failure as a finding and goes on where it can
            detail, ok = _failure(exc), False
        ended = time.monotonic()
        passed[step.name] = ok
        measures.all_passed = measures.all_passed and ok
        if ok and (step.verification or measures.verified_by is None):
            measures.end = ended
            measures.verified_by = step.name if step.verification else None
        note(Finding(step.name, ok, f"{detail} ({human_duration(round(ended - started, 2))})"))


def _objectives(run: SimulationRun, measures: Measures) -> list[Finding]:
    findings = []
    rto, rpo = run.plan.rto_s, run.plan.rpo_s
    if measures.rto_s is not None:
        until = f"the verification step {measures.verified_by}" if measures.verified_by else "the last step"
        findings.append(
            Finding(
                "rto",
                measures.rto_s <= rto,
                f"recovery time {human_duration(measures.rto_s)} against the RTO of {human_duration(rto)}: the "
                f"simulated steps' wall clock up to the end of {until} (people's steps not waited for)",
            )
        )
    if measures.losses:
        lost, how = max(measures.losses)
        findings.append(
            Finding(
                "rpo",
                lost <= rpo,
                f"data loss {human_duration(round(lost, 1))} against the RPO of {human_duration(rpo)}: the worst of "
                f"{len(measures.losses)} sources, {how}",
            )
        )
    return findings


def _failure(exc: BaseException) -> str:
    if isinstance(exc, Refused) or type(exc).__module__.startswith("drflow."):
        return str(exc)
    return f"{type(exc).__name__}: {str(exc).strip()}"
