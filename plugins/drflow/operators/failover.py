"""Recovery-plan steps on the database: assess, lag gate, fence, promote, rebuild a replica, SQL checks.

Every operator takes ``step`` (the spec's step as JSON) and ``plan`` (the plan facts of
``drflow.plan.recovery.plan_facts``), returns a JSON dict for XCom, and turns a safety refusal into
``AirflowFailException("refused: <why>; to proceed: <what would unblock it>")`` (no retries).

Override: a run triggered with ``override_safety`` (trigger form) lets a safety check step aside only
in the steps that declare ``allow_override: true`` (lag gate, fence, promote); every other step applies
its checks as if no override had been asked. A step that used the override says so loudly, with
``overridden: true`` and ``override`` (who set it, the run's reason, what was not proven) in its
result; the recovery record lists them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from drflow.operators.step_base import PlanStepOperator, refuse
from drflow.spec.plans import (
    AssessAction,
    FenceAction,
    LagGateAction,
    PromoteAction,
    RebuildReplicaAction,
    ValidateSqlAction,
)

if TYPE_CHECKING:
    from drflow.contracts import ComponentFacts, PlanFacts
    from drflow.engines.postgres.conninfo import PgConnInfo
    from drflow.engines.postgres.node import Node
    from drflow.engines.postgres.refusal import Refused

log = logging.getLogger(__name__)
OVERRIDE_PARAM = "override_safety"
BANNER = "!" * 72


def component_facts(plan: PlanFacts, component: str, *, need_nodes: bool = True) -> ComponentFacts:
    facts = plan.component(component)
    if need_nodes and not facts.nodes:
        raise ValueError(f"component {component!r} has no datastore nodes; declare its datastore in the spec")
    return facts


def node_from_plan(plan: PlanFacts, component: str, name: str, *, dbname: str | None = None) -> Node:
    """The :class:`Node` called ``name`` (``primary`` or a replica) of ``component``, from Airflow connections."""
    from drflow.engines.postgres.bindir import find_bin_dir
    from drflow.engines.postgres.conninfo import PgConnInfo
    from drflow.engines.postgres.node import Node
    from drflow.hosts import LocalHost

    facts = component_facts(plan, component)
    try:
        node = facts.nodes[name]
    except KeyError:
        raise ValueError(
            f"component {component!r} has no node {name!r}; its nodes are {', '.join(sorted(facts.nodes))}"
        ) from None
    if node.host != "local":
        raise ValueError(
            f"node {name!r} of {component!r} lives on host {node.host!r}; only host 'local' (the worker is "
            "the database host) is supported so far"
        )
    return Node(
        name=name,
        conn=PgConnInfo.from_airflow_conn(node.conn_id, dbname=dbname),
        data_dir=Path(node.data_directory) if node.data_directory else None,
        host=LocalHost(),
        bin_dir=Path(facts.bin_dir) if facts.bin_dir else find_bin_dir(),
    )


def other_nodes(plan: PlanFacts, component: str, exclude: str) -> dict[str, Node]:
    """The component's nodes but ``exclude``; one that cannot be addressed (no Airflow connection) is left out."""
    nodes = {}
    for name in component_facts(plan, component).nodes:
        if name == exclude:
            continue
        try:
            nodes[name] = node_from_plan(plan, component, name)
        except Exception as exc:  # only a reference for the lag: a node we cannot address cannot be it
            log.warning("node %s of %s cannot be addressed, left out: %s", name, component, exc)
    return nodes


def current_primary(nodes: Mapping[str, Node]) -> Node | None:
    """The reachable node that is not in recovery and furthest ahead (the conservative reference for lag)."""
    from drflow.engines.postgres.lsn import parse_lsn
    from drflow.engines.postgres.node import node_health

    best: tuple[int, Node] | None = None
    for node in nodes.values():
        health = node_health(node)
        if health["reachable"] and not health["in_recovery"]:
            lsn = parse_lsn(health["current_lsn"])
            if best is None or lsn > best[0]:
                best = (lsn, node)
    return best[1] if best else None


def override_requested(context: Mapping[str, Any]) -> bool:
    params = context.get("params") or {}
    return bool(params.get(OVERRIDE_PARAM))


def override_allowed(step: LagGateAction | FenceAction | PromoteAction, context: Mapping[str, Any]) -> bool:
    """The run asked for the override AND this step allows one; says so when only the run asked."""
    if not override_requested(context):
        return False
    if step.allow_override:
        return True
    log.warning(
        "override_safety is set for this run, but step %s does not allow an override (allow_override: false): "
        "its safety checks apply",
        step.name,
    )
    return False


def override_facts(context: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Who set the override (the user who triggered the run with override_safety), why, and what it skipped."""
    dag_run = context.get("dag_run")
    return {
        "by": getattr(dag_run, "triggering_user_name", None) if dag_run is not None else None,
        "reason": (context.get("params") or {}).get("reason"),
        "skipped": what,
    }


class FailoverStepOperator(PlanStepOperator):
    ui_color = "#f5b7b1"

    @property
    def component(self) -> str:
        if self.definition.component is None:
            raise ValueError(
                f"step {self.definition.name!r} names no component; give it `component:` in the spec's plan"
            )
        return self.definition.component

    def node(self, name: str) -> Node:
        return node_from_plan(self.facts, self.component, name)

    def target_conn(self, context: Any, node: str) -> PgConnInfo:
        """The component's database on ``node``, or on the server the step's earlier restore step started."""
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.engines.postgres.conninfo import PgConnInfo

        facts = component_facts(self.facts, self.component)
        database = facts.database or "postgres"
        if node != "restored":
            return node_from_plan(self.facts, self.component, node, dbname=database).conn
        task_id = self.definition.restored_by
        if not task_id:
            raise AirflowFailException(
                f"{self.definition.action} on `restored` needs an earlier restore step of the same component in "
                "the plan; add one before this step"
            )
        value = context["ti"].xcom_pull(task_ids=task_id)
        restored = value.get("restored") if isinstance(value, dict) else None
        if not isinstance(restored, dict):
            raise AirflowFailException(
                f"restore step {task_id!r} left no restored server in XCom; clear it and run it again"
            )
        return PgConnInfo(
            host=str(restored["host"]),
            port=int(restored["port"]),
            user=str(restored.get("user") or "postgres"),
            dbname=str(restored.get("dbname") or database),
        )

    def refused(self, exc: Refused) -> NoReturn:
        self.log.error("%s", exc)
        refuse(exc.why, exc.unblock)

    def overridden(self, context: Mapping[str, Any], what: str, exc: Exception) -> dict[str, Any]:
        override = override_facts(context, what)
        self.log.warning(
            "%s\nSAFETY OVERRIDE (override_safety set by %s, allowed by this step): %s was NOT proven and the "
            "plan goes on:\n%s\n%s",
            BANNER,
            override["by"] or "an unknown user",
            what,
            exc,
            BANNER,
        )
        return {
            "step": self.definition.name,
            "overridden": True,
            "passed": False,
            "refusal": str(exc),
            "override": override,
        }


class AssessOperator(FailoverStepOperator):
    """Health of every node, lag per replica against the RPO, the newest backup, the plan's steps; ``summary``
    is Markdown."""

    step_model = AssessAction

    ui_color = "#aed6f1"

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.engines.postgres.assess import assess, without_datastore

        facts = component_facts(self.facts, self.component, need_nodes=False)
        if not facts.nodes:
            result = without_datastore(self.component, newest_backup(self.facts, self.component))
            self.log.info("%s", result["summary"])
            return result
        nodes = {name: self.node_or_error(name) for name in facts.nodes}
        replicas = {name: node for name, node in nodes.items() if name != "primary"}
        result = assess(
            nodes.get("primary", "the component has no primary node"),
            replicas,
            float(self.facts.rpo_s),
            newest_backup(self.facts, self.component),
            component=self.component,
            plan_steps=[step.to_params() for step in self.facts.steps],
        )
        self.log.info("%s", result["summary"])
        return result

    def node_or_error(self, name: str) -> Node | str:
        """The node, or why it cannot be addressed (the assessment reports it instead of failing)."""
        try:
            return self.node(name)
        except Exception as exc:  # e.g. a missing Airflow connection: part of what the assessment reports
            return f"{type(exc).__name__}: {str(exc).strip()[:300]}"


def newest_backup(plan: PlanFacts, component: str) -> dict[str, Any] | None:
    """The newest backup in the component's first storage target; ``{"error": …}`` if the store can't be read."""
    from drflow.store.factory import target_catalogs

    targets = component_facts(plan, component, need_nodes=False).targets
    if not targets:
        return None
    target = targets[0]
    try:
        [(name, catalog)] = target_catalogs(plan.spec, [target])
        manifest = catalog.latest(component)
    except Exception as exc:  # an unreachable store must not stop the assessment
        return {"target": target.get("name"), "error": f"{type(exc).__name__}: {str(exc).strip()[:300]}"}
    if manifest is None:
        return None
    return {
        "backup_id": manifest.backup_id,
        "policy": manifest.policy,
        "backup_type": manifest.backup_type,
        "method": manifest.method,
        "finished_at": manifest.finished_at.isoformat(),
        "end_lsn": manifest.end_lsn,
        "target": name,
    }


class LagGateOperator(FailoverStepOperator):
    """Refuse while the node is unreachable, not in recovery, paused, or lags more than max_lag (default: RPO)."""

    step_model = LagGateAction

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.engines.postgres.failover import gate_lag
        from drflow.engines.postgres.refusal import Refused

        step = self.definition.spec_step(LagGateAction)
        name = step.node
        max_lag_s = max_lag_seconds(step.max_lag, self.facts)
        reference = current_primary(other_nodes(self.facts, self.component, name))
        try:
            result = gate_lag(reference, self.node(name), max_lag_s)
        except Refused as exc:
            if override_allowed(step, context):
                return self.overridden(context, f"the lag gate on {name}", exc)
            self.refused(exc)
        self.log.info("lag gate on %s passed: lag %s s (%s)", name, result["lag_s"], result["method"])
        return {"step": step.name, "passed": True, "overridden": False, **result}


def max_lag_seconds(max_lag: timedelta | None, plan: PlanFacts) -> float:
    """The step's max_lag, else the plan's RPO."""
    return max_lag.total_seconds() if max_lag else float(plan.rpo_s)


class FenceOperator(FailoverStepOperator):
    """Make a node refuse writes (read-only) or stop it, and prove it."""

    step_model = FenceAction

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.engines.postgres.fence import fence
        from drflow.engines.postgres.refusal import Refused

        step = self.definition.spec_step(FenceAction)
        name, method = step.node, step.method
        try:
            result = fence(self.node(name), method)
        except Refused as exc:
            if override_allowed(step, context):
                return self.overridden(context, f"fencing {name}", exc)
            self.refused(exc)
        self.log.info("fenced %s (%s) in %.2fs: %s", name, method, result["seconds"], result["state"]["detail"])
        return {"step": step.name, "overridden": False, **result}


class PromoteOperator(FailoverStepOperator):
    """Promote a standby after the lag gate and the split-brain guard; wait until it takes writes."""

    step_model = PromoteAction

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.engines.postgres.failover import promote
        from drflow.engines.postgres.refusal import Refused

        step = self.definition.spec_step(PromoteAction)
        name, fence_name = step.node, step.fence
        override = override_allowed(step, context)
        others = other_nodes(self.facts, self.component, name)
        reference = current_primary(others)
        fence_node = self.node(fence_name) if fence_name else None
        if override:
            self.log.warning(
                "%s\nSAFETY OVERRIDE: promoting %s WITHOUT the lag gate and the split-brain guard, as approved "
                "for this run (override_safety, reason: %s)\n%s",
                BANNER,
                name,
                (context.get("params") or {}).get("reason"),
                BANNER,
            )
        try:
            result = promote(
                self.node(name),
                fence_node=fence_node,
                primary=reference or fence_node,
                max_lag_s=max_lag_seconds(None, self.facts),
                override=override,
                timeout=self.step_timeout_s() or 120.0,
            )
        except Refused as exc:
            self.refused(exc)
        if override:
            what = f"the lag gate and the split-brain guard of promoting {name}"
            result.update(overridden=True, override=override_facts(context, what))
        self.log.info(
            "promoted %s: writable %.2fs after the guards passed (guards %.2fs); timeline %s",
            name,
            result["promote_s"] + result["writable_s"],
            result["guard_s"],
            result["timeline"],
        )
        return {"step": step.name, **result}


class RebuildReplicaOperator(FailoverStepOperator):
    """Make ``node`` a streaming replica of ``source`` (pg_rewind, else a fresh clone) and wait for catch-up."""

    step_model = RebuildReplicaAction

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.engines.postgres.rebuild import rebuild_replica, slot_name_for
        from drflow.engines.postgres.refusal import Refused

        step = self.definition.spec_step(RebuildReplicaAction)
        name, source_name = step.node, step.source
        nodes = component_facts(self.facts, self.component).nodes
        slot = nodes[name].slot or slot_name_for(name)
        try:
            result = rebuild_replica(
                self.node(name),
                self.node(source_name).conn,
                replication=self.replication_conn(source_name),
                slot=slot,
                catch_up=step.wait_caught_up,
                timeout=self.step_timeout_s() or 600.0,
            )
        except Refused as exc:
            self.refused(exc)
        self.log.info(
            "rebuilt %s as a replica of %s by %s in %.1fs", name, source_name, result["path"], result["total_s"]
        )
        if result.get("rewind_error"):
            self.log.warning("pg_rewind was not usable: %s", result["rewind_error"])
        if result.get("moved_aside"):
            self.log.warning(
                "the old data directory was kept in %s; remove it once nothing in it is needed", result["moved_aside"]
            )
        if result.get("inactive_slots"):
            self.log.warning(
                "inactive replication slots on %s hold back its WAL until a standby uses them again: %s; drop the "
                "ones no standby will use (SELECT pg_drop_replication_slot('<name>');)",
                name,
                ", ".join(result["inactive_slots"]),
            )
        return {"step": step.name, **result}

    def replication_conn(self, source_name: str) -> PgConnInfo:
        """How the rebuilt standby reaches ``source_name``: the spec's replication role, never drflow's admin."""
        from drflow.engines.postgres.conninfo import PgConnInfo

        conn_id = component_facts(self.facts, self.component).nodes[source_name].replication_conn_id
        if not conn_id:
            refuse(
                f"node {source_name} of {self.component} names no replication connection, and a rebuilt standby "
                "must not stream with drflow's own admin credentials",
                f"set replication_conn_id on node {source_name} in the spec: an Airflow postgres connection to "
                "it as a role WITH LOGIN REPLICATION",
            )
        return PgConnInfo.from_airflow_conn(str(conn_id))


class ValidateSqlOperator(FailoverStepOperator):
    """Run the step's SQL checks on a node (or on the server a restore step started); fail listing mismatches."""

    ui_color = "#abebc6"
    step_model = ValidateSqlAction

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.engines.postgres.checks import mismatch_lines, run_sql_checks

        step = self.definition.spec_step(ValidateSqlAction)
        conn = self.target_conn(context, step.node)
        report = run_sql_checks(conn, step.checks, statement_timeout=step.statement_timeout)
        for check in report["checks"]:
            self.log.info("%s %s: %s", "PASS" if check["passed"] else "FAIL", check["name"], check.get("actual"))
        if not report["passed"]:
            raise AirflowFailException(
                f"{len(report['failed'])} of {len(report['checks'])} checks failed on {conn.describe()}: "
                + "; ".join(mismatch_lines(report))
                + ". Find out why the data differs before sending traffic to it, or fix the check in the spec"
            )
        return {"step": step.name, **report}
