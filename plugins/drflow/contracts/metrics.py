"""What the metrics task, `drflow report` and the DR dashboard are given: a spec's objectives and sources.

Built from the spec by ``drflow.plan.metrics.metrics_run``; the metrics module reads the store with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drflow.contracts.base import need, optional_str
from drflow.spec.exercises import ExerciseSchedule


@dataclass(frozen=True)
class SourceFacts:
    """One backup policy (or the config) of a component: whose newest entry's age is watched per target."""

    name: str
    """The policy's name; ``config`` for the component's config versions."""
    kind: str
    """``database``, ``wal``, ``files``, ``snapshot``, ``pgbackrest``, ``dump`` or ``config``."""
    interval_s: int | None
    """The longest gap between two scheduled runs (None: after each change, a config)."""
    targets: tuple[str, ...]
    dag_id: str

    def to_params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "interval_s": self.interval_s,
            "targets": list(self.targets),
            "dag_id": self.dag_id,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SourceFacts:
        what = "metrics source"
        interval = params.get("interval_s")
        return cls(
            name=str(need(params, "name", what)),
            kind=str(need(params, "kind", what)),
            interval_s=None if interval is None else int(interval),
            targets=tuple(str(t) for t in need(params, "targets", what)),
            dag_id=str(need(params, "dag_id", what)),
        )


@dataclass(frozen=True)
class DrillFacts:
    name: str
    interval_s: int
    dag_id: str


@dataclass(frozen=True)
class MetricsComponent:
    """A component's objectives, its sources and drills, and the targets its reports may be in."""

    name: str
    title: str
    criticality: str
    rto_s: int
    rpo_s: int
    sources: tuple[SourceFacts, ...]
    drills: tuple[DrillFacts, ...]
    targets: tuple[str, ...]
    """Every target holding its backups, config versions or reports, in spec order."""
    plans: tuple[str, ...] = ()
    """DAG ids of the recovery plans that recover it."""

    def to_params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "criticality": self.criticality,
            "rto_s": self.rto_s,
            "rpo_s": self.rpo_s,
            "sources": [s.to_params() for s in self.sources],
            "drills": [{"name": d.name, "interval_s": d.interval_s, "dag_id": d.dag_id} for d in self.drills],
            "targets": list(self.targets),
            "plans": list(self.plans),
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MetricsComponent:
        what = "metrics component"
        return cls(
            name=str(need(params, "name", what)),
            title=str(need(params, "title", what)),
            criticality=str(need(params, "criticality", what)),
            rto_s=int(need(params, "rto_s", what)),
            rpo_s=int(need(params, "rpo_s", what)),
            sources=tuple(SourceFacts.from_params(s) for s in need(params, "sources", what)),
            drills=tuple(
                DrillFacts(str(d["name"]), int(d["interval_s"]), str(d["dag_id"])) for d in need(params, "drills", what)
            ),
            targets=tuple(str(t) for t in need(params, "targets", what)),
            plans=tuple(str(p) for p in params.get("plans") or ()),
        )


@dataclass(frozen=True)
class MetricsRun:
    """One spec's metrics: its components, its storage targets, where snapshots go, the exercise program."""

    spec_name: str
    components: tuple[MetricsComponent, ...]
    targets: Sequence[Mapping[str, Any]]
    """Every storage target of the spec as the spec writes it (``model_dump(mode="json")``)."""
    report_target: str | None
    """The target metrics snapshots are written to (None: the spec has no storage)."""
    period_s: int
    """Rates (success, completion) count what happened in this period before now."""
    rpo_report_interval_s: int | None = None
    """How often the RPO-compliance report runs (None: it is disabled); older reports are stale."""
    rpo_report_dag_id: str | None = None
    exercises: tuple[ExerciseSchedule, ...] = ()

    def target(self, name: str) -> Mapping[str, Any]:
        for target in self.targets:
            if target.get("name") == name:
                return target
        raise KeyError(name)

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "components": [c.to_params() for c in self.components],
            "targets": [dict(t) for t in self.targets],
            "report_target": self.report_target,
            "period_s": self.period_s,
            "rpo_report_interval_s": self.rpo_report_interval_s,
            "rpo_report_dag_id": self.rpo_report_dag_id,
            "exercises": [
                {"name": e.name, "schedule": e.schedule, "components": list(e.components)} for e in self.exercises
            ],
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MetricsRun:
        what = "metrics run"
        interval = params.get("rpo_report_interval_s")
        return cls(
            spec_name=str(need(params, "spec_name", what)),
            components=tuple(MetricsComponent.from_params(c) for c in need(params, "components", what)),
            targets=tuple(dict(t) for t in need(params, "targets", what)),
            report_target=optional_str(need(params, "report_target", what)),
            period_s=int(need(params, "period_s", what)),
            rpo_report_interval_s=None if interval is None else int(interval),
            rpo_report_dag_id=optional_str(params.get("rpo_report_dag_id")),
            exercises=tuple(
                ExerciseSchedule(str(e["name"]), str(e["schedule"]), tuple(e.get("components") or ()))
                for e in params.get("exercises") or ()
            ),
        )
