"""Each recovery-plan step as a simulation runs it: on the copies, on a test DNS record, or as what would happen.

Database steps call the same engine functions as the plan's operators (lag gate, fence, promotion with its
guards, rebuild, restore, SQL checks), pointed at the copies. ``switch_dns`` switches a test record beside
the plan's record through the same ``switch_dns``; it is deleted when the simulation ends. People are not
asked and not waited for; steps that act on live systems (HTTP calls, notifications, commands) are
recorded as what would be done, never done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from drflow.actions.command import resolve_script
from drflow.actions.traffic import create_simulation_record, delete_record, switch_dns
from drflow.contracts import ComponentFacts, PlanFacts, StepDefinition
from drflow.engines.aws.clients import open_client
from drflow.engines.postgres.assess import assess
from drflow.engines.postgres.checks import mismatch_lines, run_sql_checks
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.failover import gate_lag, promote
from drflow.engines.postgres.fence import fence
from drflow.engines.postgres.node import Node, node_health
from drflow.engines.postgres.rebuild import rebuild_replica, slot_name_for
from drflow.jobs.simulation_copies import Copies, RestoredPoint, replication_conn
from drflow.jobs.validation import SuiteTarget, run_suite
from drflow.spec.plans import (
    AssessAction,
    CommandAction,
    FenceAction,
    HttpCallAction,
    LagGateAction,
    NotifyAction,
    PromoteAction,
    RebuildReplicaAction,
    RestoreAction,
    SwitchDnsAction,
    ValidateAction,
    ValidateHttpAction,
    ValidateSqlAction,
)
from drflow.spec.types import parse_duration
from drflow.units import human_duration

ROUTE53_REGION = "us-east-1"
"""Route53 is global; its API lives in us-east-1."""


class StepFailed(RuntimeError):
    """A simulated step did not do what the plan needs; the message says what and why."""


@dataclass
class StepSimulator:
    """Runs one plan's steps on its copies; keeps what must be undone (test records) and what was restored."""

    plan: PlanFacts
    copies: Copies
    restored: dict[str, RestoredPoint] = field(default_factory=dict)
    """Restore steps' points, by step name (their data loss)."""
    promotion_lag: dict[str, float] = field(default_factory=dict)
    """Promote steps' lag measured on the copies, by step name."""
    records: list[tuple[str, str, str, str]] = field(default_factory=list)
    """Test records to delete: (aws connection, zone id, name, type)."""

    def run(self, step: StepDefinition) -> str:
        """Simulate ``step``; return what happened. :class:`StepFailed` (or an engine's refusal) when it failed."""
        if step.type == "manual":
            return f"would wait for {', '.join(step.assignees)} (manual step): not asked, not waited for"
        if step.type == "approval":
            eyes = ", four eyes" if step.four_eyes else ""
            return f"would ask {', '.join(step.approvers)} to approve (go/no-go{eyes}): not asked, not waited for"
        handler = getattr(self, f"_{step.action}", None)
        if handler is None:
            raise StepFailed(f"drflow cannot simulate action {step.action!r} yet; run a walkthrough for it instead")
        return str(handler(step))

    # -- database steps, on the copies --------------------------------------------------------------

    def _assess(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(AssessAction)
        nodes = {
            name: node
            for (c, name), node in self.copies.nodes.items()
            if c == spec_step.component and name != "restored"
        }
        primary = nodes.pop("primary", None) or "the component has no copy of its primary"
        result = assess(primary, nodes, float(self.plan.rpo_s), None, component=spec_step.component)
        gates = ", ".join(f"{row['name']} {row['gate']}" for row in result["replicas"]) or "no replicas"
        state = result["primary"].get("write_state") or "unreachable"
        return f"assessed the copies: primary {state}; lag gate: {gates}"

    def _gate_lag(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(LagGateAction)
        target = self.copies.node(spec_step.component, spec_step.node)
        max_lag_s = spec_step.max_lag.total_seconds() if spec_step.max_lag else float(self.plan.rpo_s)
        result = gate_lag(self._writable_other(spec_step.component, target), target, max_lag_s)
        return f"{target.describe()} lags {human_duration(result['lag_s'])} ({result['method']})"

    def _fence(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(FenceAction)
        result = fence(self.copies.node(spec_step.component, spec_step.node), spec_step.method)
        return f"fenced {result['node']} ({spec_step.method}) in {result['seconds']}s: {result['state']['detail']}"

    def _promote(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(PromoteAction)
        target = self.copies.node(spec_step.component, spec_step.node)
        fence_node = self.copies.node(spec_step.component, spec_step.fence) if spec_step.fence else None
        result = promote(
            target,
            fence_node=fence_node,
            primary=self._writable_other(spec_step.component, target) or fence_node,
            max_lag_s=float(self.plan.rpo_s),
            timeout=_timeout(step, 120.0),
        )
        lag = (result["guards"].get("lag") or {}).get("lag_s")
        if isinstance(lag, int | float):
            self.promotion_lag[step.name] = float(lag)
        return (
            f"promoted {target.describe()}: writable {result['total_s']}s after the step began, timeline "
            f"{result['timeline']}, lag at promotion {lag}s"
        )

    def _rebuild_replica(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(RebuildReplicaAction)
        facts = self._component(spec_step.component)
        node = self.copies.node(spec_step.component, spec_step.node)
        source = self.copies.node(spec_step.component, spec_step.source)
        conn_id = facts.nodes[spec_step.source].replication_conn_id
        if not conn_id:
            raise StepFailed(
                f"node {spec_step.source} names no replication_conn_id: the real step would refuse; set it in the spec"
            )
        result = rebuild_replica(
            node,
            source.conn,
            replication=replication_conn(PgConnInfo.from_airflow_conn(conn_id), source),
            slot=facts.nodes[spec_step.node].slot or slot_name_for(spec_step.node),
            catch_up=spec_step.wait_caught_up,
            timeout=_timeout(step, 600.0),
        )
        return f"rebuilt {node.describe()} as a standby of {source.describe()} by {result['path']}"

    def _restore(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(RestoreAction)
        facts = self._component(spec_step.component)
        targets = [t for t in facts.targets if spec_step.target in (None, t.get("name"))]
        node, point = self.copies.restore_newest(
            spec_step.component,
            "restored",
            targets,
            database=facts.database or "postgres",
            bin_dir=Path(facts.bin_dir or ""),
            with_wal=spec_step.point_in_time,
        )
        self.restored[step.name] = point
        what = "the newest archived point" if spec_step.point_in_time else "the newest full backup"
        return f"restored {what} into {node.describe()}: {point.how}"

    def _validate_sql(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(ValidateSqlAction)
        database = self._component(spec_step.component).database or "postgres"
        conn = self.copies.node(spec_step.component, spec_step.node).conn.with_dbname(database)
        report = run_sql_checks(conn, spec_step.checks, statement_timeout=spec_step.statement_timeout)
        if not report["passed"]:
            raise StepFailed(
                f"{len(report['failed'])} of {len(report['checks'])} checks failed on the copy: "
                + "; ".join(mismatch_lines(report))
            )
        return f"{len(report['checks'])} checks passed on the copy ({', '.join(c['name'] for c in report['checks'])})"

    def _validate(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(ValidateAction)
        target = SuiteTarget(conn=None, baseline_note="the step reads no database")
        if spec_step.node is not None:
            node = self.copies.node(spec_step.component, spec_step.node)
            database = self._component(spec_step.component).database or "postgres"
            point = self.restored.get(step.restored_by or "") if spec_step.node == "restored" else None
            manifest = point.manifest if point else None
            target = SuiteTarget(
                conn=node.conn.with_dbname(database),
                scratch=True,
                bin_dir=node.bin_dir,
                recorded=manifest.validation_values if manifest else {},
                baseline=manifest.validation_baseline if manifest else None,
                baseline_note=f"the copy {node.describe()} is not a whole backup as it was taken",
            )
        suite = run_suite(spec_step.suite, target)
        if not suite.passed:
            raise StepFailed(f"validation suite on the copy: {suite.summary()}; " + "; ".join(suite.problems()))
        return f"validation suite on the copy: {suite.summary()}"

    # -- DNS: a test record -------------------------------------------------------------------------

    def _switch_dns(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(SwitchDnsAction)
        client = open_client("route53", spec_step.conn_id, ROUTE53_REGION)
        test = create_simulation_record(
            client, spec_step.hosted_zone_id, spec_step.record_name, spec_step.record_type, spec_step.conn_id
        )
        self.records.append((spec_step.conn_id, test["hosted_zone_id"], test["record_name"], spec_step.record_type))
        result = switch_dns(
            spec_step.conn_id,
            spec_step.hosted_zone_id,
            test["record_name"],
            spec_step.record_type,
            spec_step.value,
            spec_step.ttl,
            client=client,
        )
        return (
            f"switched the test record {test['record_name']} from {', '.join(result['old_values'])} to "
            f"{spec_step.value} ({result['status']} in {result['switch_s']}s); {spec_step.record_name} was only read"
        )

    def remove_records(self) -> list[str]:
        """Delete every test record; return what could not be deleted, with how to delete it by hand."""
        problems = []
        for conn_id, zone_id, name, record_type in self.records:
            try:
                delete_record(open_client("route53", conn_id, ROUTE53_REGION), zone_id, name, record_type)
            except Exception as exc:  # reported with the command to run by hand; the other records still go
                problems.append(
                    f"the test record {name} {record_type} is left in hosted zone {zone_id} ({exc}); delete it with "
                    "`aws route53 change-resource-record-sets` (action DELETE)"
                )
        return problems

    # -- steps that act on live systems: recorded, not done -----------------------------------------

    def _http_call(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(HttpCallAction)
        return (
            f"would call {spec_step.method} {spec_step.endpoint or '/'} on connection {spec_step.conn_id}: not called, "
            "it acts on the live service"
        )

    def _validate_http(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(ValidateHttpAction)
        return (
            f"would check GET {spec_step.endpoint} on connection {spec_step.conn_id} for {spec_step.expect_status}: "
            "not called, the live service does not use the copies"
        )

    def _notify(self, step: StepDefinition) -> str:
        """What the step would send: a statuspage channel's rendered template (refused if it would leak)."""
        from datetime import UTC, datetime

        spec_step = step.spec_step(NotifyAction)
        said = []
        for name in spec_step.channels:
            templates = (channel := self.plan.notifications.get(name)) and channel.templates
            text = templates.named(spec_step.template) if templates and spec_step.template else None
            if text:
                now = datetime.now(UTC)
                said.append(f"{name} ({spec_step.template}): {self.plan.public_text(text, now, now)!r}")
            else:
                said.append(name)
        return f"would notify {'; '.join(said)}: not sent"

    def _run_command(self, step: StepDefinition) -> str:
        spec_step = step.spec_step(CommandAction)
        script = resolve_script(spec_step.command[0])  # refuses a missing, outside or non-executable script
        return f"would run {script} {' '.join(spec_step.command[1:])}".rstrip() + ": reviewed script found, not run"

    # -- helpers --------------------------------------------------------------------------------------

    def _component(self, name: str) -> ComponentFacts:
        return self.plan.component(name)

    def _writable_other(self, component: str, target: Node) -> Node | None:
        """Another copy of ``component`` that is a primary (reachable, not in recovery): the lag reference."""
        for (c, _), node in self.copies.nodes.items():
            if c != component or node.conn.port == target.conn.port:
                continue
            health = node_health(node)
            if health["reachable"] and not health["in_recovery"]:
                return node
        return None


def _timeout(step: StepDefinition, default: float) -> float:
    return parse_duration(step.timeout).total_seconds() if step.timeout else default


def copies_needed(plan: PlanFacts, steps: list[StepDefinition]) -> dict[str, set[str]]:
    """The nodes of each component that the plan's database steps act on: the copies to make first."""
    needed: dict[str, set[str]] = {}
    for step in steps:
        if step.component is None or step.action not in DATABASE_ACTIONS:
            continue
        if step.action == "assess":
            names = set(plan.component(step.component).nodes)
        else:
            names = {str(step.fields[key]) for key in ("node", "fence", "source") if step.fields.get(key)}
        names.discard("restored")
        if names:
            needed.setdefault(step.component, set()).update(names)
    return needed


DATABASE_ACTIONS = frozenset({"assess", "gate_lag", "fence", "promote", "rebuild_replica", "validate_sql", "validate"})
